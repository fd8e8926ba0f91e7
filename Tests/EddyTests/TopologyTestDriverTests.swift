import EddyStreams
import Foundation
import XCTest

/// The topology test driver against references written plainly here: brute force over the
/// generated input, without Eddy code.
final class TopologyTestDriverTests: XCTestCase {
    // MARK: input and references

    /// A small deterministic generator (xorshift64*), independent of EddyGen.
    private struct Random {
        var state: UInt64
        init(seed: UInt64) { state = seed | 1 }
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    private struct Event {
        let user: String
        let item: String
        let type: String
        let price: Double
        let ts: Int64
        var json: String { #"{"user_id":"\#(user)","item_id":"\#(item)","event_type":"\#(type)","price":\#(price),"ts":\#(ts)}"# }
    }

    private static let base: Int64 = 1_767_225_600_000
    private static let weights = ["view": 1.0, "click": 3.0, "cart": 5.0, "purchase": 10.0]

    /// `count` events over `users` users and `items` items; event times are distinct (a
    /// shuffled second each, so out of order) unless `ordered`.
    private func events(_ count: Int, users: Int, items: Int, types: [String] = ["view", "click", "cart", "purchase"], seed: UInt64,
                        timeOffset: Int64 = 0) -> [Event] {
        var rng = Random(seed: seed)
        var seconds = Array(0..<Int64(count))
        for i in stride(from: seconds.count - 1, to: 0, by: -1) { seconds.swapAt(i, rng.below(i + 1)) }
        return (0..<count).map { i in
            Event(user: "u\(rng.below(users))", item: "i\(rng.below(items))", type: types[rng.below(types.count)],
                  price: Double(rng.below(100_000)) / 100, ts: Self.base + timeOffset + seconds[i] * 1000)
        }
    }

    /// Compares Redis views: the same keys and types; numbers (hash values, zset scores)
    /// within `accuracy` relative, everything else exactly.
    private func assertRedis(_ actual: [String: TestRedisValue], _ expected: [String: TestRedisValue], accuracy: Double = 1e-9,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(actual.keys), Set(expected.keys), "keys", file: file, line: line)
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= accuracy * max(1, abs(a), abs(b)) }
        func same(_ a: String, _ b: String) -> Bool {
            if a == b { return true }
            guard let x = Double(a), let y = Double(b) else { return false }
            return close(x, y)
        }
        var mismatches = 0
        for (key, e) in expected {
            guard let a = actual[key] else { continue }
            let ok: Bool
            switch (a, e) {
            case (.string(let x), .string(let y)): ok = same(x, y)
            case (.list(let x), .list(let y)): ok = x == y
            case (.hash(let x), .hash(let y)): ok = Set(x.keys) == Set(y.keys) && y.allSatisfy { same(x[$0.key]!, $0.value) }
            case (.zset(let x), .zset(let y)): ok = Set(x.keys) == Set(y.keys) && y.allSatisfy { close(x[$0.key]!, $0.value) }
            default: ok = false
            }
            if !ok {
                mismatches += 1
                if mismatches <= 5 { XCTFail("\(key): \(a), expected \(e)", file: file, line: line) }
            }
        }
        XCTAssertEqual(mismatches, 0, "mismatching keys", file: file, line: line)
    }

    private func number(_ d: Double) -> String { String(d) }

    /// Per user: count and price sum; per user and type: count.
    private func userReference(_ events: [Event]) -> [String: TestRedisValue] {
        var counts: [String: (Int, Double)] = [:]
        var byType: [String: [String: Int]] = [:]
        for e in events {
            counts[e.user, default: (0, 0)].0 += 1
            counts[e.user, default: (0, 0)].1 += e.price
            byType[e.user, default: [:]][e.type, default: 0] += 1
        }
        var out: [String: TestRedisValue] = [:]
        for (user, (n, sum)) in counts { out["user:\(user):counts"] = .hash(["count": String(n), "sum_price": number(sum)]) }
        for (user, types) in byType { out["user:\(user):by_type"] = .hash(types.mapValues(String.init)) }
        return out
    }

    private func userTopology() throws -> Topology {
        let b = StreamsBuilder(application: "driver-users")
        let source = b.stream(topic: "clicks", key: "user_id", timestamp: "ts")
        source.aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:counts", ttlSeconds: 86_400))
        source.aggregate("per_user_type", groupBy: ["user_id", "event_type"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:by_type", field: "{event_type}", value: "count"))
        return try b.build()
    }

    /// Per item, of the events with a weighted type: count, weighted count, the by-weight
    /// ranking, and the decayed popularity's rank (log2(score at the latest event) + latest/half-life).
    private func itemReference(_ events: [Event], halfLifeMs: Double) -> [String: TestRedisValue] {
        var count: [String: Int] = [:], weighted: [String: Double] = [:], times: [String: [(Double, Double)]] = [:]
        for e in events {
            guard let w = Self.weights[e.type] else { continue }
            count[e.item, default: 0] += 1
            weighted[e.item, default: 0] += w
            times[e.item, default: []].append((w, Double(e.ts)))
        }
        var out: [String: TestRedisValue] = [:]
        for (item, n) in count { out["item:\(item):counts"] = .hash(["count": String(n), "weighted_count": number(weighted[item]!)]) }
        if !weighted.isEmpty { out["items:by_weight"] = .zset(weighted) }
        var ranks: [String: Double] = [:]
        for (item, list) in times {
            let last = list.map(\.1).max()!
            let score = list.reduce(0) { $0 + $1.0 * pow(2, -(last - $1.1) / halfLifeMs) }
            ranks[item] = log2(score) + last / halfLifeMs
        }
        if !ranks.isEmpty { out["items:popular"] = .zset(ranks) }
        return out
    }

    private func itemTopology() throws -> Topology {
        let b = StreamsBuilder(application: "driver-items")
        let events = b.stream(topic: "clicks", key: "user_id", timestamp: "ts")
            .filter("events", field: "event_type", .oneOf(["view", "click", "cart", "purchase"]))
        let weights = Topology.Weights(field: "event_type", values: Self.weights.map { Topology.Weight($0.key, $0.value) })
        events.aggregate("per_item", groupBy: ["item_id"], weights: weights)
            .toRedis(.init(kind: .hash, key: "item:{item_id}:counts"))
            .toRedis(.init(kind: .zset, key: "items:by_weight", field: "{item_id}", value: "weighted_count"))
        events.decay("popularity", groupBy: ["item_id"], weights: weights, halfLife: .seconds(3600))
            .toRedis(.init(kind: .zset, key: "items:popular", field: "{item_id}", value: "rank"))
        return try b.build()
    }

    /// Per user, the `size` items of the newest events (by event time), newest first, as JSON.
    private func recentReference(_ events: [Event], size: Int) -> [String: TestRedisValue] {
        var byUser: [String: [Event]] = [:]
        for e in events { byUser[e.user, default: []].append(e) }
        return Dictionary(uniqueKeysWithValues: byUser.map { user, list in
            let newest = list.sorted { $0.ts > $1.ts }.prefix(size).map { "\"\($0.item)\"" }
            return ("user:\(user):recent", TestRedisValue.string("[" + newest.joined(separator: ",") + "]"))
        })
    }

    private func pipe(_ events: ArraySlice<Event>, into driver: TopologyTestDriver, commitEvery: Int) throws {
        for (i, e) in events.enumerated() {
            try driver.pipe(e.json)
            if (i + 1) % commitEvery == 0 { try driver.commit() }
        }
        try driver.commit()
    }

    // MARK: tests

    func testPerUserCountsAndSumsOverThreePartitionsMatchTheReference() throws {
        let driver = try TopologyTestDriver(try userTopology(), partitions: 3)
        let input = events(3_000, users: 97, items: 50, seed: 1)
        try driver.pipe(input[0..<10].map(\.json))
        XCTAssertEqual(driver.redis, [:], "nothing is visible before a commit")
        try pipe(input[10...], into: driver, commitEvery: 377)
        assertRedis(driver.redis, userReference(input))
        XCTAssertEqual(driver.ttl("user:u1:counts"), 86_400)
        XCTAssertNil(driver.ttl("user:u1:by_type"))
        // Every partition got records (keys spread by their hash) and committed them.
        var total: Int64 = 0
        for p in 0..<Int32(3) {
            let offset = try XCTUnwrap(driver.committedOffset(partition: p))
            XCTAssertGreaterThan(offset, 0)
            total += offset
        }
        XCTAssertEqual(total, 3_000)
        XCTAssertFalse(driver.changelog.isEmpty)
        XCTAssertTrue(driver.deadLetters.isEmpty)
    }

    func testReKeyedCountsAndDecayPerItemMatchTheReference() throws {
        let driver = try TopologyTestDriver(try itemTopology(), partitions: 3)
        // "hover" is filtered out before both aggregates.
        let input = events(2_500, users: 40, items: 31, types: ["view", "click", "cart", "purchase", "hover"], seed: 2)
        try pipe(input[...], into: driver, commitEvery: 300)
        assertRedis(driver.redis, itemReference(input, halfLifeMs: 3_600_000))
        // The per-item stores live in the repartition tasks: their changelogs were written.
        XCTAssertTrue(driver.changelog.keys.contains { $0.contains("per_item") }, "\(driver.changelog.keys.sorted())")
        XCTAssertTrue(driver.changelog.keys.contains { $0.contains("popularity") }, "\(driver.changelog.keys.sorted())")
    }

    func testRecentItemsPerUserMatchTheReference() throws {
        let b = StreamsBuilder(application: "driver-recent")
        b.stream(topic: "clicks", key: "user_id", timestamp: "ts")
            .recent("recently_viewed", groupBy: ["user_id"], field: "item_id", size: 5)
            .toRedis(.init(kind: .string, key: "user:{user_id}:recent", value: "recent", ttlSeconds: 604_800))
        let driver = try TopologyTestDriver(try b.build(), partitions: 3)
        let input = events(2_000, users: 60, items: 200, seed: 3)
        try pipe(input[...], into: driver, commitEvery: 250)
        assertRedis(driver.redis, recentReference(input, size: 5))
        XCTAssertEqual(driver.ttl("user:u7:recent"), 604_800)
    }

    func testInvalidRecordsBecomeDeadLettersWithTheirReason() throws {
        let b = StreamsBuilder(application: "driver-dlq")
        b.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["event_type"])
            .aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:counts"))
        let driver = try TopologyTestDriver(try b.build(), partitions: 2)
        let records: [(String, String?)] = [
            (#"{"user_id":"u1","event_type":"view","price":2,"ts":1767225600000}"#, nil),
            (#"{"user_id":"u1","event_type":"view","price":2,"ts":1767225600000"#, "invalid_json"),
            (#"not json at all"#, "invalid_json"),
            (#"{"user_id":"u1","price":2,"ts":1767225600000}"#, "missing_field"),
            (#"{"event_type":"view","price":2,"ts":1767225600000}"#, "missing_field"),
            (#"{"user_id":"","event_type":"view","price":2,"ts":1767225600000}"#, "missing_field"),
            (#"{"user_id":"u1","event_type":"view","price":"two","ts":1767225600000}"#, "wrong_type"),
            (#"{"user_id":"u1","event_type":"view","price":2,"ts":"yesterday"}"#, "wrong_type"),
            (#"{"user_id":"u1","event_type":{"a":1},"price":2,"ts":1767225600000}"#, "wrong_type"),
            (#"{"user_id":"u1","event_type":"view","price":2,"ts":-5}"#, "out_of_range"),
            (#"{"user_id":"u1","event_type":"view","price":1e400,"ts":1767225600000}"#, "out_of_range"),
            (#"{"user_id":"u1","event_type":"click","price":3.5,"ts":1767225601000}"#, nil),
        ]
        try driver.pipe(records.map(\.0))
        let expected = records.filter { $0.1 != nil }
        XCTAssertEqual(driver.deadLetters.map(\.reason), expected.map { $0.1! })
        XCTAssertEqual(driver.deadLetters.map(\.value), expected.map(\.0))
        try driver.commit()
        XCTAssertEqual(driver.deadLetters.count, expected.count, "committed dead letters stay")
        // Only the two valid records count.
        assertRedis(driver.redis, ["user:u1:counts": .hash(["count": "2", "sum_price": "5.5"])])
    }

    func testRestartKeepsCommittedStateAndALostDiskIsRestoredFromTheChangelog() throws {
        let b = StreamsBuilder(application: "driver-restart")
        let source = b.stream(topic: "clicks", key: "user_id", timestamp: "ts")
        source.aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:counts", ttlSeconds: 86_400))
        source.aggregate("per_user_type", groupBy: ["user_id", "event_type"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:by_type", field: "{event_type}", value: "count"))
        source.recent("recently_viewed", groupBy: ["user_id"], field: "item_id", size: 4)
            .toRedis(.init(kind: .string, key: "user:{user_id}:recent", value: "recent", ttlSeconds: 604_800))
        let weights = Topology.Weights(field: "event_type", values: Self.weights.map { Topology.Weight($0.key, $0.value) })
        source.aggregate("per_item", groupBy: ["item_id"], weights: weights)
            .toRedis(.init(kind: .hash, key: "item:{item_id}:counts"))
            .toRedis(.init(kind: .zset, key: "items:by_weight", field: "{item_id}", value: "weighted_count"))
        source.decay("popularity", groupBy: ["item_id"], weights: weights, halfLife: .seconds(3600))
            .toRedis(.init(kind: .zset, key: "items:popular", field: "{item_id}", value: "rank"))
        let driver = try TopologyTestDriver(try b.build(), partitions: 3)
        func reference(_ events: [Event]) -> [String: TestRedisValue] {
            userReference(events).merging(recentReference(events, size: 4)) { a, _ in a }
                .merging(itemReference(events, halfLifeMs: 3_600_000)) { a, _ in a }
        }
        let input = events(4_000, users: 50, items: 30, seed: 5)
        let a = input[0..<1_000], bPart = input[1_000..<1_600], c = input[1_600..<2_800], d = input[2_800...]

        try pipe(a, into: driver, commitEvery: 200)
        let afterA = driver.redis
        assertRedis(afterA, reference(Array(a)))
        // Uncommitted records are lost in a crash...
        try driver.pipe(bPart.map(\.json))
        try driver.restart()
        try driver.commit()
        XCTAssertEqual(driver.redis, afterA, "a restart loses what was not committed")
        // ...and processed once when they come again; the committed state is still there.
        try pipe(bPart, into: driver, commitEvery: 1_000)
        assertRedis(driver.redis, reference(Array(input[0..<1_600])))

        // A move to an empty disk: the stores come back from the changelog alone.
        try pipe(c, into: driver, commitEvery: 500)
        try driver.pipe(d.prefix(100).map(\.json))  // uncommitted: lost
        try driver.restartOnEmptyDisk()
        try pipe(d, into: driver, commitEvery: 400)
        assertRedis(driver.redis, reference(input))
        // And once more on the same disk, with nothing uncommitted.
        try driver.restart()
        let more = events(500, users: 50, items: 30, seed: 6, timeOffset: 10_000_000)
        try pipe(more[...], into: driver, commitEvery: 100)
        assertRedis(driver.redis, reference(input + more))
    }

    /// The README's example, as written there.
    func testReadmeExample() throws {
        let b = StreamsBuilder(application: "user-counts")
        b.stream(topic: "clicks", key: "user_id", timestamp: "ts")
            .aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:counts"))
        let driver = try TopologyTestDriver(try b.build(), partitions: 3)
        try driver.pipe(#"{"user_id":"u1","price":2.5,"ts":1767225600000}"#)
        try driver.pipe("not json")
        try driver.commit()
        XCTAssertEqual(driver.redis["user:u1:counts"], .hash(["count": "1", "sum_price": "2.5"]))
        XCTAssertEqual(driver.deadLetters.map(\.reason), ["invalid_json"])
        XCTAssertEqual(driver.redis.count, 1)
    }
}
