import EddyRedis
import EddyTestSupport
import Foundation

/// What `Topologies/recs.yaml` must leave in Redis for `events` (given in each user's
/// arrival order), by brute force (`RecsReference`): the ranks of every zset family
/// (popularity, trending, popularity per category, users' categories, co-view and its
/// totals), the recent-item lists and the cart versions, the per-user ones after their
/// state_ttl (`StateTTLReference`). Sessions are not modelled here (`SessionWorkload`
/// checks them).
struct RecsExpectedState: CrashReference {
    static let hour = 3_600_000.0, day = 86_400_000.0, week = 7 * 86_400_000.0
    static let hourMs: Int64 = 3_600_000, dayMs: Int64 = 86_400_000
    static let popularityWeights = ["view": 1.0, "click": 3.0, "cart": 5.0, "purchase": 10.0]
    static let coViewWeights = ["view": 1.0, "click": 2.0, "cart": 4.0, "purchase": 8.0]

    /// Per key pattern, the zsets it matches: key → member → score.
    let zsets: [(pattern: String, expected: [String: [String: Double]])]
    /// user → the last 50 distinct items, newest first.
    let recent: [String: [String]]
    /// user → cart events (`user:cart:{user}`).
    let carts: [String: Int]
    /// category → item → rank on the 1 h half-life (the cold users' answers).
    let categoryPopularity: [String: [String: Double]]
    /// `co_view:{item}` → neighbour → rank.
    let coView: [String: [String: Double]]

    /// `partitions`: the source topic's, which users are on by Kafka's partitioner.
    init(_ all: [RecsReference.Event], partitions: Int) {
        let events = all.filter { Self.popularityWeights[$0.event_type] != nil }
        // Per-user nodes forget users idle for their state_ttl: the events they still hold.
        func kept(ttlMs: Int64, _ group: @escaping (RecsReference.Event) -> String?) -> [RecsReference.Event] {
            StateTTLReference(ttlMs: ttlMs).kept(all, partition: { kafkaPartition(ofKey: $0.user_id, partitions: partitions) }, time: \.ts) {
                Self.popularityWeights[$0.event_type] == nil ? nil : group($0)
            }
        }
        recent = RecsReference.recentDistinct(kept(ttlMs: Self.dayMs) { $0.user_id }, size: 50)
        let userCategoryEvents = kept(ttlMs: 30 * Self.dayMs) { "\($0.user_id)\u{0}\($0.category!)" }
        let cartEvents = kept(ttlMs: 30 * Self.dayMs) { $0.event_type == "cart" ? $0.user_id : nil }
        var byItem: [String: [RecsReference.Contribution]] = [:], byCategory: [String: [String: [RecsReference.Contribution]]] = [:]
        var byUserCategory: [String: [String: [RecsReference.Contribution]]] = [:], totals: [String: [RecsReference.Contribution]] = [:]
        var carts: [String: Int] = [:]
        for e in events {
            let w = Self.popularityWeights[e.event_type]!
            byItem[e.item_id, default: []].append((w, e.ts))
            byCategory[e.category!, default: [:]][e.item_id, default: []].append((w, e.ts))
            totals[e.item_id, default: []].append((Self.coViewWeights[e.event_type]!, e.ts))
        }
        for e in userCategoryEvents {
            byUserCategory["user:categories:\(e.user_id)", default: [:]][e.category!, default: []].append((Self.popularityWeights[e.event_type]!, e.ts))
        }
        for e in cartEvents { carts[e.user_id, default: 0] += 1 }
        self.carts = carts
        categoryPopularity = byCategory.mapValues { $0.mapValues { RecsReference.rank($0, halfLifeMs: Self.hour) } }
        // recs.yaml's co-view keeps the top 50 per item, pruned as days (+ 1 h) close.
        var coView = RecsReference.topKCoView(RecsReference.pairs(events, last: 20, withinMs: 1_800_000), weights: Self.coViewWeights,
                                              halfLifeMs: Self.week, k: 50, everyMs: Self.dayMs,
                                              closedThrough: RecsReference.closedEpoch(all, partitions: partitions, everyMs: Self.dayMs, graceMs: Self.hourMs))
            .mapKeys { "co_view:\($0)" }
        self.coView = coView
        coView["co_view:totals"] = totals.mapValues { RecsReference.rank($0, halfLifeMs: Self.week) }
        zsets = [
            ("item:popularity", ["item:popularity": byItem.mapValues { RecsReference.rank($0, halfLifeMs: Self.hour) }]),
            ("item:trending", ["item:trending": byItem.mapValues {
                RecsReference.rank($0, halfLifeMs: Self.hour) - RecsReference.rank($0, halfLifeMs: Self.day)
            }]),
            ("item:popularity:*", Dictionary(uniqueKeysWithValues: categoryPopularity.map { ("item:popularity:\($0.key)", $0.value) })),
            ("user:categories:*", byUserCategory.mapValues { $0.mapValues { RecsReference.rank($0, halfLifeMs: Self.week) } }),
            ("co_view:*", coView),
        ]
    }

    /// Keys compared; members or values below the reference (or missing) count as lost,
    /// above it (or unexpected) as duplicated. Ranks within 1e-9 (relative) are equal: the
    /// reference decays and adds in its own order, rounding at every step.
    func compare(with redis: RedisConnection) throws -> (keysChecked: Int, lost: Int, duplicated: Int) {
        var checked = 0, lost = 0, duplicated = 0
        for family in zsets {
            guard case .array(let found) = try redis.send("KEYS", family.pattern) else { throw ServiceError("KEYS \(family.pattern) failed") }
            let keys = Set(found.compactMap(\.string))
            for (key, members) in family.expected {
                checked += 1
                let got = keys.contains(key) ? try Self.zset(key, redis) : [:]
                for (member, want) in members {
                    guard let score = got[member] else { lost += 1; continue }
                    let tolerance = 1e-9 * Swift.max(1, abs(want))
                    if score < want - tolerance { lost += 1 } else if score > want + tolerance { duplicated += 1 }
                }
                duplicated += got.keys.filter { members[$0] == nil }.count
            }
            duplicated += keys.subtracting(family.expected.keys).count
        }
        for (user, items) in recent {
            checked += 1
            if try redis.send("LRANGE", "user:recent:\(user)", "0", "-1").strings != items { lost += 1 }
        }
        for (user, count) in carts {
            checked += 1
            let got = Int(try redis.send("GET", "user:cart:\(user)").string ?? "0") ?? 0
            if got < count { lost += count - got } else if got > count { duplicated += got - count }
        }
        return (checked, lost, duplicated)
    }

    func differences(in redis: RedisConnection, limit: Int) throws -> [String] {
        var out: [String] = []
        for family in zsets { out += try zsetDifferences(redis, pattern: family.pattern, expected: family.expected) }
        for (user, items) in recent.sorted(by: { $0.key < $1.key }) {
            let got = try redis.send("LRANGE", "user:recent:\(user)", "0", "-1").strings
            if got != items { out.append("user:recent:\(user): \(got), expected \(items)") }
        }
        for (user, count) in carts.sorted(by: { $0.key < $1.key }) {
            let got = try redis.send("GET", "user:cart:\(user)").string
            if got != "\(count)" { out.append("user:cart:\(user): \(got ?? "nil"), expected \(count)") }
        }
        return Array(out.prefix(limit))
    }

    private static func zset(_ key: String, _ redis: RedisConnection) throws -> [String: Double] {
        let flat = try redis.send("ZRANGE", key, "0", "-1", "WITHSCORES").strings
        var got: [String: Double] = [:]
        for i in stride(from: 0, to: flat.count - 1, by: 2) { got[flat[i]] = Double(flat[i + 1]) }
        return got
    }
}
