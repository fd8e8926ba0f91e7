/// A decay's top K (`Topology.TopK`): the rules that keep, per item (the group fields but
/// the last), only its `k` best neighbours (the last field), decided on event time so
/// that the store after a replay equals the live run's however commits and upstream tasks
/// interleaved.
///
/// Entries are per group *and epoch*: the group key gets one more field, the epoch of the
/// record's event time (`every` ms long), or `kept` for the value that survived the epochs
/// closed so far. A combiner upstream builds the same keys, so a partial never mixes
/// epochs, and re-keys by the item's fields alone (`partition(of:)`), so an item's entries
/// meet in one task.
///
/// Why an epoch's close depends on the input alone: it fires (an event-time timer at the
/// epoch's end + grace) once the task's stream time has passed that — in a repartition
/// task the least stream time over all upstream tasks at their committed points. A record
/// more than `grace` behind the stream time it is judged by (its upstream task's, which
/// follows that task's own input order) is skipped as late; so after the close every
/// upstream task is past end + grace, and any record still to come is of a later epoch.
/// The epoch's entries are therefore complete when it closes, and the kept values after it
/// are a function of the records of the epochs closed so far.
final class TopKPruning {
    let k: Int
    let everyMs: Int64
    let graceMs: Int64
    /// Group fields that name the item (all but the last).
    let perFields: Int
    /// Epochs with entries that have not closed (their timers are pending), so a rendering
    /// knows which entries of a group to add up. Filled from the task's timers on first use
    /// (after a restore), then kept as timers are set and fire.
    private var openEpochs: Set<Int64>?
    /// The epoch whose timer was set last: most records are of the latest epoch.
    private var lastScheduled = Int64.min

    /// Bytes of the epoch field a key ends with: a 4-byte length (8) and the epoch.
    static let suffixBytes = 12
    /// The epoch field of the kept value (no epoch sorts after it).
    static let keptEpoch = Int64.max

    init(_ spec: CompiledTopology.Aggregate.TopK) {
        k = spec.k
        everyMs = spec.everyMs
        graceMs = spec.graceMs
        perFields = spec.perFields
    }

    @inline(__always)
    func epoch(of time: Int64) -> Int64 {
        let (q, r) = time.quotientAndRemainder(dividingBy: everyMs)
        return r < 0 ? q - 1 : q
    }

    /// Whether a record at `time`, judged by `streamTime`, is too late for its epoch.
    @inline(__always)
    func isLate(_ time: Int64, judgedBy streamTime: Int64) -> Bool {
        streamTime != .min && time < streamTime &- graceMs
    }

    /// Appends the epoch field to a group key.
    @inline(__always)
    static func appendEpoch(_ epoch: Int64, to key: inout [UInt8]) {
        key.append(8); key.append(0); key.append(0); key.append(0)
        withUnsafeBytes(of: (UInt64(bitPattern: epoch) ^ (1 << 63)).bigEndian) { key.append(contentsOf: $0) }
    }

    static func epoch(ofKey key: [UInt8]) -> Int64 {
        var v: UInt64 = 0
        for b in key[(key.count - 8)...] { v = v << 8 | UInt64(b) }
        return Int64(bitPattern: v ^ (1 << 63))
    }

    /// The length of the first `fields` length-prefixed fields of a group key.
    static func prefixLength(_ key: [UInt8], fields: Int) -> Int { key.withUnsafeBytes { prefixLength($0, fields: fields) } }

    static func prefixLength(_ key: UnsafeRawBufferPointer, fields: Int) -> Int {
        var p = 0
        for _ in 0..<fields {
            let n = Int(key[p]) | Int(key[p + 1]) << 8 | Int(key[p + 2]) << 16 | Int(key[p + 3]) << 24
            p += 4 + n
        }
        return p
    }

    /// The partition of a repartition topic that owns a key: that of its item's fields.
    func partition(of key: [UInt8], count: Int) -> Int32 {
        key.withUnsafeBytes { Repartitions.partition(of: Array($0[..<Self.prefixLength($0, fields: perFields)]), count: count) }
    }

    /// Sets the timer that closes the epoch of an entry's key, once per epoch.
    @inline(__always)
    func entryAdded(epoch: Int64, node: Int, timers: TaskTimers) {
        guard epoch != lastScheduled else { return }
        lastScheduled = epoch
        loadOpenEpochs(node: node, timers: timers)
        guard openEpochs!.insert(epoch).inserted else { return }
        let (end, overflow) = (epoch &+ 1).multipliedReportingOverflow(by: everyMs)
        timers.schedule(node: node, key: Self.timerKey(epoch), at: overflow ? .max : end.addingReportingOverflow(graceMs).overflow ? .max : end + graceMs)
    }

    private func loadOpenEpochs(node: Int, timers: TaskTimers) {
        guard openEpochs == nil else { return }
        openEpochs = Set(timers.pendingKeys(node: node).map(Self.epoch(ofTimerKey:)))
    }

    static func timerKey(_ epoch: Int64) -> [UInt8] { withUnsafeBytes(of: epoch.bigEndian, Array.init) }
    static func epoch(ofTimerKey key: [UInt8]) -> Int64 { key.reduce(0) { $0 << 8 | Int64($1) } }

    /// Closes an epoch: per item with entries in it, adds them to the kept values and keeps
    /// the `k` best; the rest become empty (deleted at commit, removed from Redis).
    /// Returns how many neighbours were pruned.
    func close(timerKey: [UInt8], node: Int, timers: TaskTimers, table: AggregateTable, rank: (Int) -> Double) throws -> Int {
        let epoch = Self.epoch(ofTimerKey: timerKey)
        loadOpenEpochs(node: node, timers: timers)
        openEpochs!.remove(epoch)
        if lastScheduled == epoch { lastScheduled = .min }
        var suffix: [UInt8] = []
        Self.appendEpoch(epoch, to: &suffix)
        var keptSuffix: [UInt8] = []
        Self.appendEpoch(Self.keptEpoch, to: &keptSuffix)

        // Per item: its groups with an entry of the epoch, and its kept values' keys; from
        // memory and from RocksDB (one scan: evicted entries live only there). Where both
        // have a key, memory's value is the newer: values are read through the table.
        var closing: [[UInt8]: Set<[UInt8]>] = [:]  // item → group keys without the epoch
        var kept: [[UInt8]: Set<[UInt8]>] = [:]     // item → keys of kept values
        func collect(_ key: UnsafeRawBufferPointer) {
            guard key.count > Self.suffixBytes else { return }
            let tail = key.suffix(Self.suffixBytes)
            let isEpoch = tail.elementsEqual(suffix)
            guard isEpoch || tail.elementsEqual(keptSuffix) else { return }
            let item = Array(key[..<Self.prefixLength(key, fields: perFields)])
            if isEpoch { closing[item, default: []].insert(Array(key.dropLast(Self.suffixBytes))) } else { kept[item, default: []].insert(Array(key)) }
        }
        for e in 0..<table.entryCount where !table.isEmpty(e) { table.keys[e].withUnsafeBytes(collect) }
        table.forEachStoredKey { collect($0); return true }

        var pruned = 0
        for (item, groups) in closing {
            var keys = kept[item] ?? []
            for group in groups {
                guard let value = table.storedValue(for: group + suffix) else { continue }
                let into = try table.entry(for: group + keptSuffix)
                value.withUnsafeBytes { table.merge($0, into: into) }
                table.clear(try table.entry(for: group + suffix))
                keys.insert(group + keptSuffix)
            }
            pruned += try prune(keys, table: table, rank: rank)
        }
        return pruned
    }

    /// Keeps the `k` best of an item's kept values: by rank, ties to the neighbour whose
    /// value's bytes sort first.
    private func prune(_ keys: Set<[UInt8]>, table: AggregateTable, rank: (Int) -> Double) throws -> Int {
        guard keys.count > k else { return 0 }
        var entries: [(e: Int, rank: Double, key: [UInt8])] = []
        for key in keys {
            let e = try table.entry(for: key, markingDirty: false)
            if !table.isEmpty(e) { entries.append((e, rank(e), key)) }
        }
        guard entries.count > k else { return 0 }
        // The neighbour's value: the key between the item's fields and the epoch's.
        let perFields = perFields
        let neighbour = { (key: [UInt8]) in key[(Self.prefixLength(key, fields: perFields) + 4)..<(key.count - Self.suffixBytes)] }
        entries.sort { $0.rank != $1.rank ? $0.rank > $1.rank : neighbour($0.key).lexicographicallyPrecedes(neighbour($1.key)) }
        for loser in entries[k...] { table.clear(loser.e) }
        return entries.count - k
    }

    /// Each group (key without its epoch) with a dirty entry, and its value as a sink shows
    /// it: the kept value plus the open epochs' entries, added up in entry `s` of `scratch`
    /// (`isEmpty`: the group holds nothing any more, and leaves Redis).
    func forEachDirtyGroup(of table: AggregateTable, node: Int, timers: TaskTimers, scratch: AggregateTable,
                           _ body: (_ s: Int, _ isEmpty: Bool) throws -> Void) throws {
        loadOpenEpochs(node: node, timers: timers)
        let suffixes = ([Self.keptEpoch] + openEpochs!.sorted()).map { epoch in
            var suffix: [UInt8] = []
            Self.appendEpoch(epoch, to: &suffix)
            return suffix
        }
        var seen = Set<[UInt8]>()
        for e in table.dirty {
            let group = Array(table.keys[e].dropLast(Self.suffixBytes))
            guard seen.insert(group).inserted else { continue }
            scratch.removeAll()
            let s = try scratch.entry(for: group)
            for suffix in suffixes {
                if let value = table.storedValue(for: group + suffix) { value.withUnsafeBytes { scratch.merge($0, into: s) } }
            }
            try body(s, scratch.isEmpty(s))
        }
    }
}
