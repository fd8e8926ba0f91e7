/// An aggregate's `state_ttl` (`Topology.Node.stateTTLMs`): a group that no record touched
/// for the TTL of event time leaves the table (a tombstone in the store and its changelog)
/// and Redis, so per-user state stays bounded however many users come and go.
///
/// Stream time is cut into steps of TTL/8. A group's first record in a step writes a
/// touch row into the table, `touchMarker` + the step size + the step (8 bytes each,
/// big-endian, the step's sign bit flipped) + the group key, of count 1; one timer per step
/// fires once the task's stream time passes the step's end + TTL. It reads the step's touch
/// rows: a group that also has a row of a later step (one of the steps whose timers are
/// pending) was touched since and stays; the others go. The step's rows go either way. So a
/// group goes between TTL and 9/8 TTL after its last record.
///
/// A record's step is that of the stream time it is judged by (`recordStreamTime`: its own
/// partition's, or, in a sub-topology fed records through a repartition topic, the one it
/// carries from its upstream task), the same on every replay, as the timers are. The
/// compiler allows a state TTL only where that holds: no re-keying partials, no top K, no
/// aggregate of an aggregate's rows (which would take back values an expired group no
/// longer has).
///
/// The step size is in every row and timer key: after a TTL change, the old steps' timers
/// clear their rows and expire nothing (a group untouched since the change, like one from
/// before the TTL was set, stays until its next record starts its clock).
final class IdleExpiry {
    let ttlMs: Int64
    let stepMs: Int64
    /// The step whose groups `touched` holds: a group's first record in it writes its row.
    private var step = Int64.min
    private var header: [UInt8] = []
    private var touched = Set<GroupKey>()
    /// This node's steps whose timers are pending (of this step size): where a later touch
    /// of a group can be. Read from the task's timers on first use (after a restore).
    private var pendingSteps: Set<Int64>?

    /// A touch row's first bytes (a group key starts with its first value's 4-byte
    /// little-endian length, so no group starts so; `TopKPruning` has FC to FF).
    static let touchMarker: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFB]
    static let headerBytes = 20
    /// Timer keys: "x", the step size, the step (a top K's are the 8 bytes of an epoch).
    private static let timerMark: UInt8 = 0x78

    init(ttlMs: Int64) {
        self.ttlMs = ttlMs
        stepMs = max(1, ttlMs / 8)
    }

    private func step(of time: Int64) -> Int64 {
        let (q, r) = time.quotientAndRemainder(dividingBy: stepMs)
        return r < 0 ? q - 1 : q
    }

    /// When `step`'s groups are due: its end + TTL.
    private func due(_ step: Int64) -> Int64 {
        let (end, overflow) = (step &+ 1).multipliedReportingOverflow(by: stepMs)
        let (due, late) = end.addingReportingOverflow(ttlMs)
        return overflow || late ? .max : due
    }

    private static func header(stepMs: Int64, step: Int64) -> [UInt8] {
        var header = touchMarker
        withUnsafeBytes(of: stepMs.bigEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: (UInt64(bitPattern: step) ^ (1 << 63)).bigEndian) { header.append(contentsOf: $0) }
        return header
    }

    private static func timerKey(stepMs: Int64, step: Int64) -> [UInt8] {
        var key = [timerMark]
        withUnsafeBytes(of: stepMs.bigEndian) { key.append(contentsOf: $0) }
        withUnsafeBytes(of: step.bigEndian) { key.append(contentsOf: $0) }
        return key
    }

    /// The step size and step of a timer key.
    private static func decode(timerKey key: [UInt8]) -> (stepMs: Int64, step: Int64) {
        let stepMs = key[1..<9].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        return (stepMs, key[9..<17].reduce(Int64(0)) { $0 << 8 | Int64($1) })
    }

    static func isTimerKey(_ key: [UInt8]) -> Bool { key.count == 17 && key[0] == timerMark }

    private func loadPendingSteps(node: Int, timers: TaskTimers) -> Set<Int64> {
        if let pendingSteps { return pendingSteps }
        let steps = Set(timers.pendingKeys(node: node).filter(Self.isTimerKey).map(Self.decode).filter { $0.stepMs == stepMs }.map(\.step))
        pendingSteps = steps
        return steps
    }

    /// A record of `group`, judged by stream time `streamTime`: its step's touch row, once per step.
    @inline(__always)
    func touch(_ group: [UInt8], at streamTime: Int64, node: Int, timers: TaskTimers, table: AggregateTable) {
        let s = step(of: streamTime)
        if s != step {
            step = s
            header = Self.header(stepMs: stepMs, step: s)
            touched.removeAll(keepingCapacity: true)
            _ = loadPendingSteps(node: node, timers: timers)
            if pendingSteps!.insert(s).inserted { timers.schedule(node: node, key: Self.timerKey(stepMs: stepMs, step: s), at: due(s)) }
        }
        guard touched.insert(GroupKey(bytes: group)).inserted else { return }
        let e = table.entry(for: header + group, stored: nil)
        if table.counts[e] == 0 { table.add(count: 1, to: e) }
    }

    /// A step's timer: its groups without a later touch leave. Returns how many left.
    func expire(timerKey: [UInt8], node: Int, timers: TaskTimers, table: AggregateTable) throws -> Int {
        let (size, s) = Self.decode(timerKey: timerKey)
        var later = loadPendingSteps(node: node, timers: timers)
        if size == stepMs {
            pendingSteps!.remove(s)
            later = later.filter { $0 > s }
        }
        let header = Self.header(stepMs: size, step: s)
        let laterHeaders = later.sorted(by: >).map { Self.header(stepMs: stepMs, step: $0) }
        // The step's rows: memory's (newer: a cleared one hides a row the store still has)
        // and the store's.
        var inMemory = Set<[UInt8]>(), groups: [[UInt8]] = []
        for e in 0..<table.entryCount where table.keys[e].starts(with: header) {
            inMemory.insert(table.keys[e])
            if !table.isEmpty(e) { groups.append(Array(table.keys[e][Self.headerBytes...])) }
        }
        table.forEachStoredRow(from: header) { key, _ in
            guard key.starts(with: header) else { return false }
            let k = Array(key)
            if !inMemory.contains(k) { groups.append(Array(k[Self.headerBytes...])) }
            return true
        }
        var expired = 0
        for group in groups {
            // A timer of another step size (the TTL changed) expires nothing: its groups'
            // later touches are not comparable.
            var touchedSince = size != stepMs
            for later in laterHeaders where !touchedSince {
                touchedSince = try table.storedValue(for: later + group) != nil
            }
            if !touchedSince {
                table.clear(table.entry(for: group, stored: nil))
                expired += 1
            }
            table.clear(table.entry(for: header + group, stored: nil))
        }
        return expired
    }
}
