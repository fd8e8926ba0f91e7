/// An aggregate's `state_ttl` (`Topology.Node.stateTTLMs`): a group that no record touched
/// for the TTL of event time leaves the table (a tombstone in the store and its changelog)
/// and Redis, so per-user state stays bounded however many users come and go.
///
/// Stream time is cut into steps of TTL/8. A group's first record in a step writes a
/// touch row into the table, `touchMarker` + the step (8 bytes, big-endian, sign bit
/// flipped) + the group key, of count 1; one timer per step fires once stream time passes
/// the step's end + TTL. The close reads the step's touch rows: a group that also has a row
/// of a later step was touched since and stays; the others go. The step's rows go either
/// way. So a group goes between TTL and 9/8 TTL after its last record.
///
/// Why a replay expires the same groups: steps are taken on the task's stream time (its
/// partition's records in order, restored with its timers), and the timers fire on it. The
/// compiler allows a state_ttl only where that holds: a group of the sub-topology's key (no
/// re-keying partials), no top K, no aggregate of its rows (they cannot be taken back).
final class IdleExpiry {
    let ttlMs: Int64
    let stepMs: Int64
    /// The step whose groups `touched` holds: a group's first record in it writes its row.
    private var step = Int64.min
    private var header: [UInt8] = []
    private var touched = Set<GroupKey>()

    /// A touch row's first bytes (a group key starts with its first value's 4-byte
    /// little-endian length, so no group starts so; `TopKPruning` has FC to FF).
    static let touchMarker: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFB]
    static let headerBytes = 12
    /// Timer keys: "x" and the step (a top K's are the 8 bytes of an epoch).
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

    private static func header(_ step: Int64) -> [UInt8] {
        var header = touchMarker
        withUnsafeBytes(of: (UInt64(bitPattern: step) ^ (1 << 63)).bigEndian) { header.append(contentsOf: $0) }
        return header
    }

    static func isTimerKey(_ key: [UInt8]) -> Bool { key.count == 9 && key[0] == timerMark }

    /// A record of `group` at stream time `streamTime`: its step's touch row, once per step.
    @inline(__always)
    func touch(_ group: [UInt8], at streamTime: Int64, node: Int, timers: TaskTimers, table: AggregateTable) {
        let s = step(of: streamTime)
        if s != step {
            step = s
            header = Self.header(s)
            touched.removeAll(keepingCapacity: true)
            // Once per step and process: scheduling a pending timer again changes nothing.
            var key = [Self.timerMark]
            withUnsafeBytes(of: s.bigEndian) { key.append(contentsOf: $0) }
            timers.schedule(node: node, key: key, at: due(s))
        }
        guard touched.insert(GroupKey(bytes: group)).inserted else { return }
        let e = table.entry(for: header + group, stored: nil)
        if table.counts[e] == 0 { table.add(count: 1, to: e) }
    }

    /// A step's timer: its groups without a later touch leave. Returns how many left.
    func expire(timerKey: [UInt8], streamTime: Int64, table: AggregateTable) throws -> Int {
        let s = timerKey[1...].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let header = Self.header(s)
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
        let latest = step(of: streamTime)
        var expired = 0
        for group in groups {
            var touchedSince = false
            var later = s &+ 1
            while later <= latest, !touchedSince {
                touchedSince = try table.storedValue(for: Self.header(later) + group) != nil
                later += 1
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
