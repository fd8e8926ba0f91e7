import EddyRecs

/// The item-level state answers are scored from — co-view neighbour lists, popularity and
/// trending zsets, co-view totals, catalog rows — kept across requests for `ttl`, so a
/// request reads Redis only for what is its user's (recent items, categories, factors, cart
/// version), always fresh. These keys change with everybody's events, a little per commit:
/// answering from a copy up to `ttl` old changes which items rank where by that much, never
/// whether the user's own events (what they saw, their cart) count. Without it a computed
/// answer took ~15 round trips and parsed ~2,000 replies (4 ms at one connection,
/// Benchmarks/query at a28341f).
///
/// At most `capacity` values (a member of a zset's top, a member's score, a hash's fields)
/// are kept: past that the expired ones go, then everything if still over half of it (a
/// burst of distinct keys must not grow the process); expired ones also go every
/// `sweepInterval`. Thread-safe: the pool's threads share one, reading at once.
final class ItemStateCache: Sendable {
    private struct Timed<Value: Sendable>: Sendable {
        let value: Value
        let read: ContinuousClock.Instant
    }

    private struct Storage: Sendable {
        /// A zset's highest members, as read with `limit` (fewer: the zset has no more).
        var tops: [String: Timed<(limit: Int, members: [ScoredMember])>] = [:]
        var topMembers = 0
        var scores: [String: [String: Timed<Double?>]] = [:]
        var scoreCount = 0
        /// By the field names, then the key.
        var fields: [[String]: [String: Timed<[String?]>]] = [:]
        var fieldCount = 0
        var lastSweep: ContinuousClock.Instant
        var count: Int { topMembers + scoreCount + fieldCount }
    }

    let ttl: Duration
    let capacity: Int
    let sweepInterval: Duration
    private let storage: ReadWriteLock<Storage>

    init(ttl: Duration, capacity: Int = 500_000) {
        self.ttl = ttl
        self.capacity = capacity
        sweepInterval = max(ttl * 10, .seconds(10))
        storage = ReadWriteLock(Storage(lastSweep: .now))
    }

    /// `state`'s reads, answered from the cache where fresh, else from `state` (and kept).
    func reading(_ state: any RecsState, at now: ContinuousClock.Instant = .now) -> Reader { Reader(cache: self, state: state, now: now) }

    struct Reader {
        let cache: ItemStateCache
        let state: any RecsState
        let now: ContinuousClock.Instant

        func tops(_ keys: [String], limit: Int) throws -> [[ScoredMember]] {
            try readThrough(keys.count, kept: { s, n in
                guard let hit = s.tops[keys[n]], cache.isFresh(hit.read, now), hit.value.limit >= limit else { return nil }
                return Array(hit.value.members.prefix(limit))
            }, read: { missing in
                try state.tops(missing.map { keys[$0] }, limit: limit)
            }, keep: { s, n, members in
                let old = s.tops.updateValue(Timed(value: (limit, members), read: now), forKey: keys[n])
                s.topMembers += ItemStateCache.weight(members) - (old.map { ItemStateCache.weight($0.value.members) } ?? 0)
            })
        }

        /// A member known to be absent is kept as nil too (`Double??`: not kept is the outer nil).
        func scores(_ key: String, members: [String]) throws -> [Double?] {
            try readThrough(members.count, kept: { s, n -> Double?? in
                guard let hit = s.scores[key]?[members[n]], cache.isFresh(hit.read, now) else { return .none }
                return .some(hit.value)
            }, read: { missing in
                try state.scores(key, members: missing.map { members[$0] })
            }, keep: { s, n, score in
                if s.scores[key, default: [:]].updateValue(Timed(value: score, read: now), forKey: members[n]) == nil { s.scoreCount += 1 }
            })
        }

        func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] {
            try readThrough(keys.count, kept: { s, n -> [String?]? in
                guard let hit = s.fields[names]?[keys[n]], cache.isFresh(hit.read, now) else { return nil }
                return hit.value
            }, read: { missing in
                try state.fields(missing.map { keys[$0] }, names)
            }, keep: { s, n, row in
                if s.fields[names, default: [:]].updateValue(Timed(value: row, read: now), forKey: keys[n]) == nil { s.fieldCount += 1 }
            })
        }

        /// `count` values: the fresh ones kept (one shared lock), the others read from the
        /// state in one call and kept (one exclusive lock).
        private func readThrough<Value: Sendable>(_ count: Int, kept: (borrowing Storage, Int) -> Value?, read: ([Int]) throws -> [Value],
                                                  keep: (inout Storage, Int, Value) -> Void) throws -> [Value] {
            var out: [Value?] = cache.storage.read { s in (0..<count).map { kept(s, $0) } }
            let missing = out.indices.filter { out[$0] == nil }
            guard !missing.isEmpty else { return out.map { $0! } }
            let values = try read(missing)
            cache.store(at: now) { s in
                for (n, value) in zip(missing, values) {
                    out[n] = value
                    keep(&s, n, value)
                }
            }
            return out.map { $0! }
        }
    }

    var count: Int { storage.read { $0.count } }

    private func isFresh(_ read: ContinuousClock.Instant, _ now: ContinuousClock.Instant) -> Bool { now - read < ttl }

    /// What a zset's top counts against the capacity (an empty one still takes an entry).
    fileprivate static func weight(_ members: [ScoredMember]) -> Int { max(1, members.count) }

    private func store(at now: ContinuousClock.Instant, _ body: (inout Storage) -> Void) {
        storage.write { s in
            body(&s)
            let over = s.count > capacity
            guard over || now - s.lastSweep >= sweepInterval else { return }
            s.tops = s.tops.filter { isFresh($0.value.read, now) }
            s.scores = s.scores.mapValues { $0.filter { isFresh($0.value.read, now) } }.filter { !$0.value.isEmpty }
            s.fields = s.fields.mapValues { $0.filter { isFresh($0.value.read, now) } }.filter { !$0.value.isEmpty }
            s.topMembers = s.tops.values.reduce(0) { $0 + Self.weight($1.value.members) }
            s.scoreCount = s.scores.values.reduce(0) { $0 + $1.count }
            s.fieldCount = s.fields.values.reduce(0) { $0 + $1.count }
            s.lastSweep = now
            if over, s.count > capacity / 2 { s = Storage(lastSweep: now) }
        }
    }
}
