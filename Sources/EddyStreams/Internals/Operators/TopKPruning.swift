/// A decay's top K (`Topology.TopK`): the rules that keep, per item (the group fields but
/// the last), only its `k` best neighbours (the last field), decided on event time so
/// that the store after a replay equals the live run's however commits and upstream tasks
/// interleaved.
///
/// Three entries per group (pair) in the decay's table:
/// - its **total**, under the plain group key: the decay of every record counted, what the
///   sinks render (the path of a decay without a top K);
/// - its **epoch** entries, `epochMarker` + the epoch (8 bytes) + the group key: the records
///   of one epoch (`every` ms of event time) not closed yet. A combiner upstream builds
///   these keys, so a partial never mixes epochs, and re-keys them by the item's fields
///   alone (`partition(of:)`), so an item's entries meet in one task; downstream a partial
///   is added to its epoch entry and to the total;
/// - its **kept** value, `keptMarker` + the group key: what survived the closed epochs.
/// A group key starts with its first value's 4-byte little-endian length, so the markers
/// (a length of nearly 4 GiB) cannot start one. Epoch keys sort by epoch, kept keys by item: a close reads ranges.
///
/// Closing an epoch adds each of its entries to the group's kept value (the total does
/// not change: no Redis write) and keeps per item the `k` kept values of largest rank; a
/// pruned group's total becomes the sum of its open epochs (or goes, with its Redis member).
///
/// Why a close depends on the input alone: it fires (an event-time timer at the epoch's
/// end + grace) once the task's stream time has passed that — in a repartition task the
/// least stream time over all upstream tasks at their committed points. A record more
/// than `grace` behind the stream time it is judged by (its upstream task's, which follows
/// that task's own input order) is skipped as late; so after the close every upstream task
/// is past end + grace, and any record still to come is of a later epoch. The epoch's
/// entries are complete when it closes, and the kept values after it are a function of
/// the records of the epochs closed so far.
final class TopKPruning {
    let k: Int
    let everyMs: Int64
    let graceMs: Int64
    /// Group fields that name the item (all but the last).
    let perFields: Int
    /// Epochs with entries that have not closed (their timers are pending): a pruned group's
    /// total is rebuilt from them. Filled from the task's timers on first use (after a
    /// restore), then kept as timers are set and fire.
    private var openEpochs: Set<Int64>?
    /// The epoch whose timer was set last: most records are of the latest epoch.
    private var lastScheduled = Int64.min

    /// (FF FF FF FF is taken: an Eddy before the operator layer kept the intake's
    /// bookkeeping there, which `TaskBuilder` refuses.)
    static let epochMarker: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFD]
    static let keptMarker: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFC]
    /// An epoch key's bytes before the group key: the marker and the epoch.
    static let epochHeaderBytes = 12

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

    /// The epoch key of a group: `epochMarker`, the epoch (big-endian, sign bit flipped, so
    /// keys sort by epoch), the group key.
    static func epochHeader(_ epoch: Int64) -> [UInt8] {
        var header = epochMarker
        withUnsafeBytes(of: (UInt64(bitPattern: epoch) ^ (1 << 63)).bigEndian) { header.append(contentsOf: $0) }
        return header
    }

    static func epoch(ofEpochKey key: [UInt8]) -> Int64 {
        var v: UInt64 = 0
        for b in key[4..<epochHeaderBytes] { v = v << 8 | UInt64(b) }
        return Int64(bitPattern: v ^ (1 << 63))
    }

    /// The length of the first `fields` length-prefixed fields of a group key.
    static func prefixLength<C: Collection>(_ key: C, fields: Int) -> Int where C.Element == UInt8, C.Index == Int {
        var p = key.startIndex
        for _ in 0..<fields {
            let n = Int(key[p]) | Int(key[p + 1]) << 8 | Int(key[p + 2]) << 16 | Int(key[p + 3]) << 24
            p += 4 + n
        }
        return p - key.startIndex
    }

    /// The item's fields of a group key.
    private func item(ofGroup group: ArraySlice<UInt8>) -> [UInt8] {
        Array(group.prefix(Self.prefixLength(group, fields: perFields)))
    }

    /// The partition of a repartition topic that owns an epoch key: its item's.
    func partition(of key: [UInt8], count: Int) -> Int32 {
        Repartitions.partition(of: item(ofGroup: key[Self.epochHeaderBytes...]), count: count)
    }

    /// When `epoch` closes: its end + grace (its timer fires once stream time passes it).
    private func due(_ epoch: Int64) -> Int64 {
        let (end, overflow) = (epoch &+ 1).multipliedReportingOverflow(by: everyMs)
        let (due, late) = end.addingReportingOverflow(graceMs)
        return overflow || late ? .max : due
    }

    /// Whether `epoch` has closed by stream time `streamTime`.
    func isClosed(_ epoch: Int64, at streamTime: Int64) -> Bool { due(epoch) < streamTime }

    /// Sets the timer that closes `epoch`, once per epoch.
    @inline(__always)
    func entryAdded(epoch: Int64, node: Int, timers: TaskTimers) {
        guard epoch != lastScheduled else { return }
        lastScheduled = epoch
        loadOpenEpochs(node: node, timers: timers)
        guard openEpochs!.insert(epoch).inserted else { return }
        timers.schedule(node: node, key: Self.timerKey(epoch), at: due(epoch))
    }

    private func loadOpenEpochs(node: Int, timers: TaskTimers) {
        guard openEpochs == nil else { return }
        openEpochs = Set(timers.pendingKeys(node: node).map(Self.epoch(ofTimerKey:)))
    }

    static func timerKey(_ epoch: Int64) -> [UInt8] { withUnsafeBytes(of: epoch.bigEndian, Array.init) }
    static func epoch(ofTimerKey key: [UInt8]) -> Int64 { key.reduce(0) { $0 << 8 | Int64($1) } }

    /// Closes an epoch: per item with entries in it, adds them to the kept values and keeps
    /// the `k` best; a pruned group's kept value goes and its total becomes its open
    /// epochs' sum. `rank(value)` is the rank of an encoded value, `combine(a, b)` the
    /// value of both. Returns how many neighbours were pruned.
    ///
    /// Reads the epoch's range of the store and each of its items' range of kept values
    /// (memory's value wins where memory has a key: it is newer); only entries that change
    /// are loaded into the table. Items are closed as their rows are read: reading the
    /// whole epoch first (a dictionary of every pair of the day) outgrew the memory budget.
    func close(timerKey: [UInt8], node: Int, timers: TaskTimers, table: AggregateTable,
               rank: ([UInt8]) -> Double, combine: ([UInt8]?, [UInt8]) -> [UInt8]) throws -> Int {
        let epoch = Self.epoch(ofTimerKey: timerKey)
        loadOpenEpochs(node: node, timers: timers)
        openEpochs!.remove(epoch)
        if lastScheduled == epoch { lastScheduled = .min }
        let header = Self.epochHeader(epoch)

        // Memory's entries of the epoch and kept values, by item (empty ones too: they hide
        // a row RocksDB still has until the commit deletes it).
        var memoryEpoch: [[UInt8]: [Int]] = [:], memoryKept: [[UInt8]: [Int]] = [:]
        for e in 0..<table.entryCount {
            let key = table.keys[e]
            if key.starts(with: header) {
                memoryEpoch[item(ofGroup: key[Self.epochHeaderBytes...]), default: []].append(e)
            } else if key.starts(with: Self.keptMarker) {
                memoryKept[item(ofGroup: key[4...]), default: []].append(e)
            }
        }
        // The epoch's rows come in key order, item by item: each item is closed once its
        // rows are read, so a close holds one item's rows at a time, not the epoch's.
        var pruned = 0
        var failure: Error?
        func closeItem(_ item: [UInt8], _ stored: [[UInt8]: [UInt8]]) {
            guard failure == nil else { return }
            var rows = stored  // epoch key → value
            for e in memoryEpoch.removeValue(forKey: item) ?? [] { rows[table.keys[e]] = table.isEmpty(e) ? nil : table.encodedValue(of: e) }
            guard !rows.isEmpty else { return }
            var kept: [[UInt8]: [UInt8]] = [:]  // kept key → value
            let keptPrefix = Self.keptMarker + item
            table.forEachStoredRow(from: keptPrefix) { key, value in
                guard key.starts(with: keptPrefix) else { return false }
                kept[Array(key)] = Array(value)
                return true
            }
            for e in memoryKept[item] ?? [] { kept[table.keys[e]] = table.isEmpty(e) ? nil : table.encodedValue(of: e) }
            do { pruned += try self.closeItem(kept: kept, closing: rows, table: table, rank: rank, combine: combine) } catch { failure = error }
        }
        var item: [UInt8]? = nil
        var rows: [[UInt8]: [UInt8]] = [:]
        table.forEachStoredRow(from: header) { key, value in
            guard key.starts(with: header) else { return false }
            let k = Array(key)
            let rowItem = self.item(ofGroup: k[Self.epochHeaderBytes...])
            if rowItem != item {
                if let item { closeItem(item, rows) }
                item = rowItem
                rows.removeAll(keepingCapacity: true)
            }
            rows[k] = Array(value)
            return failure == nil
        }
        if let item { closeItem(item, rows) }
        for remaining in Array(memoryEpoch.keys) { closeItem(remaining, [:]) }
        if let failure { throw failure }
        return pruned
    }

    /// One item's part of a close. The ranking is on the values after the close; only the
    /// winners' kept values are written (most pairs are seen once and lose at once), and
    /// values come from the reads above, so no entry is read from RocksDB again.
    private func closeItem(kept: [[UInt8]: [UInt8]], closing: [[UInt8]: [UInt8]], table: AggregateTable,
                           rank: ([UInt8]) -> Double, combine: ([UInt8]?, [UInt8]) -> [UInt8]) throws -> Int {
        var after = kept
        var epochKeys: [[UInt8]: [UInt8]] = [:]  // kept key → its epoch entry's key
        for (key, value) in closing {
            let keptKey = Self.keptMarker + key[Self.epochHeaderBytes...]
            after[keptKey] = combine(kept[keptKey], value)
            epochKeys[keptKey] = key
        }
        var losers: ArraySlice<(key: [UInt8], rank: Double)> = []
        if after.count > k {
            let perFields = perFields
            let neighbour = { (key: [UInt8]) in key[(4 + Self.prefixLength(key[4...], fields: perFields) + 4)...] }
            let ranked = after.map { (key: $0.key, rank: rank($0.value)) }
                .sorted { $0.rank != $1.rank ? $0.rank > $1.rank : neighbour($0.key).lexicographicallyPrecedes(neighbour($1.key)) }
            losers = ranked[k...]
        }
        let lost = Set(losers.map(\.key))
        for (keptKey, epochKey) in epochKeys {
            table.clear(table.entry(for: epochKey, stored: nil))
            guard !lost.contains(keptKey) else { continue }
            // The kept value after the close (memory may hold the one before: replace it).
            let e = table.entry(for: keptKey, stored: nil)
            table.clear(e)
            after[keptKey]!.withUnsafeBytes { table.merge($0, into: e) }
        }
        if losers.isEmpty { return 0 }
        let open = openEpochs!.sorted().map(Self.epochHeader)
        for loser in losers {
            if kept[loser.key] != nil { table.clear(table.entry(for: loser.key, stored: nil)) }
            let group = Array(loser.key[4...])
            let total = table.entry(for: group, stored: nil)
            table.clear(total)
            for header in open {
                if let value = try table.storedValue(for: header + group) { value.withUnsafeBytes { table.merge($0, into: total) } }
            }
        }
        return losers.count
    }
}
