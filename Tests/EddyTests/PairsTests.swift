import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// `pairs` and the co-view matrix below it (a `decay` grouped by `[item_id, other_item]`,
/// re-keyed by item) in the topology test driver, against a brute-force reference written
/// from the rules in `Topology.Pairs`: every user's items replayed in order, every pair
/// listed, then every pair's decayed sum computed in closed form.
final class PairsTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000
    private static let halfLifeMs = 3_600_000.0
    private static let weights = ["view": 1.0, "click": 2.0, "cart": 4.0, "purchase": 8.0]

    private struct Event {
        let user: String, item: String, type: String, ts: Int64
        var json: String { #"{"user_id":"\#(user)","item_id":"\#(item)","event_type":"\#(type)","ts":\#(ts)}"# }
    }

    private static func topology(last: Int, within: String?) -> String {
        """
        application: coview
        source: {topic: clicks, key: user_id, timestamp: ts, required: [item_id]}
        nodes:
          - name: item-pairs
            pairs: {group_by: [user_id], item: item_id, last: \(last)\(within.map { ", within: \($0)" } ?? "")}
          - name: co-view
            input: item-pairs
            decay:
              group_by: [item_id, other_item]
              half_life: 1h
              weights: {field: event_type, values: {view: 1, click: 2, cart: 4, purchase: 8}}
            to_redis: {type: zset, key: "co_view:{item_id}", member: "{other_item}", score: rank}
        """
    }

    /// Events in time order (several per millisecond-free step), users and items drawn
    /// with repeats so that lists fill, items recur, and some users pause long.
    private func events(_ count: Int, seed: UInt64) -> [Event] {
        var random = TestRandom(seed: seed)
        let types = ["view", "view", "view", "click", "cart", "purchase", "search"]
        var ts = Self.base
        return (0..<count).map { _ in
            ts += Int64(random.below(90_000))
            return Event(user: "u\(random.below(30))", item: "i\(random.below(25))", type: types[random.below(types.count)], ts: ts)
        }
    }

    private func referencePairs(_ input: [Event], last: Int, withinMs: Int64?) -> [(item: String, other: String, type: String, ts: Int64)] {
        RecsReference.pairs(input.map { RecsReference.Event(user: $0.user, item: $0.item, type: $0.type, ts: $0.ts) }, last: last, withinMs: withinMs)
    }

    private func referenceCoView(_ pairs: [(item: String, other: String, type: String, ts: Int64)]) -> [String: [String: Double]] {
        RecsReference.coView(pairs, weights: Self.weights, halfLifeMs: Self.halfLifeMs)
    }

    private func assertCoView(_ driver: TopologyTestDriver, equals expected: [String: [String: Double]], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(driver.redis.keys), Set(expected.keys.map { "co_view:\($0)" }), file: file, line: line)
        for (item, others) in expected {
            guard case .zset(let got)? = driver.redis["co_view:\(item)"] else { XCTFail("no co_view:\(item)", file: file, line: line); continue }
            XCTAssertEqual(Set(got.keys), Set(others.keys), item, file: file, line: line)
            for (other, rank) in others {
                // Partials combined per commit round differently from one sum.
                XCTAssertEqual(got[other] ?? .nan, rank, accuracy: 1e-9 * abs(rank), "\(item) ~ \(other)", file: file, line: line)
            }
        }
    }

    func testCoViewOfTheLastItemsMatchesAllPairsComputedByHand() throws {
        let input = events(4000, seed: 11)
        let topology = try TopologyFile.parse(Self.topology(last: 5, within: nil), file: "coview.yaml")
        let driver = try TopologyTestDriver(topology, partitions: 3)
        for (i, e) in input.enumerated() {
            try driver.pipe(e.json)
            if i % 500 == 499 { try driver.commit() }
        }
        try driver.commit()
        let pairs = referencePairs(input, last: 5, withinMs: nil)
        XCTAssertGreaterThan(pairs.count, 20_000, "most events pair with several items")
        assertCoView(driver, equals: referenceCoView(pairs))
    }

    func testOnlyItemsSeenWithinTheWindowPairAndARestartChangesNothing() throws {
        let input = events(4000, seed: 12)
        let topology = try TopologyFile.parse(Self.topology(last: 8, within: "10m"), file: "coview.yaml")
        let driver = try TopologyTestDriver(topology, partitions: 2)
        for (i, e) in input.enumerated() {
            try driver.pipe(e.json)
            if i % 400 == 399 { try driver.commit() }
            // Restarts drop what is not committed (a crash): commit first, as the runtime
            // replays from the committed offsets.
            if i == 1500 { try driver.commit(); try driver.restart() }
            if i == 2900 { try driver.commit(); try driver.restartOnEmptyDisk() }
        }
        try driver.commit()
        let pairs = referencePairs(input, last: 8, withinMs: 600_000)
        let unbounded = referencePairs(input, last: 8, withinMs: nil)
        XCTAssertLessThan(pairs.count, unbounded.count * 9 / 10, "the window leaves pairs out")
        assertCoView(driver, equals: referenceCoView(pairs))
    }

    /// A record arriving out of order pairs by its own time, and keeps an item's largest time.
    func testOutOfOrderRecordsPairByTheirOwnEventTime() throws {
        let topology = try TopologyFile.parse(Self.topology(last: 3, within: "1m"), file: "coview.yaml")
        let driver = try TopologyTestDriver(topology)
        let t = Self.base
        let input = [
            Event(user: "u", item: "a", type: "view", ts: t + 120_000),
            Event(user: "u", item: "b", type: "view", ts: t),             // 2 min before a: no pair
            Event(user: "u", item: "c", type: "click", ts: t + 100_000),  // pairs with a (20 s) and b (100 s: no)
            Event(user: "u", item: "a", type: "view", ts: t + 30_000),    // a keeps time t+120 s; pairs with b (30 s), c (70 s: no)
            Event(user: "u", item: "d", type: "view", ts: t + 170_000),   // list a, c, b: pairs with a (50 s) only
        ]
        for e in input { try driver.pipe(e.json) }
        try driver.commit()
        let pairs = referencePairs(input, last: 3, withinMs: 60_000)
        XCTAssertEqual(pairs.map { "\($0.item)-\($0.other)" }, ["c-a", "a-c", "a-b", "b-a", "d-a", "a-d"])
        assertCoView(driver, equals: referenceCoView(pairs))
    }

    /// Pair records are JSON objects with each field once: the record's own fields, its
    /// item and the other item, escaped as JSON strings (an item with a quote, a backslash
    /// or a newline pairs and groups like any other).
    func testPairRecordsAreTheRecordWithBothItemsAndEscapesSurvive() throws {
        let text = """
            application: coview
            source: {topic: clicks, key: user_id, timestamp: ts, required: [item_id]}
            nodes:
              - name: item-pairs
                pairs: {group_by: [user_id], item: item_id, last: 3}
                to_topic: {topic: pairs-out}
              - name: co-view
                input: item-pairs
                decay: {group_by: [item_id, other_item], half_life: 1h, weights: {field: event_type, values: {view: 1}}}
                to_redis: {type: zset, key: "co_view:{item_id}", member: "{other_item}", score: count}
            """
        let driver = try TopologyTestDriver(try TopologyFile.parse(text, file: "coview.yaml"))
        let quoted = "a\"q", escaped = "b\\n\n"  // as the JSON below writes them
        try driver.pipe(#"{"user_id":"u","item_id":"a\"q","event_type":"view","other_item":"stale","ts":1000}"#)
        try driver.pipe(#"{"item_id":"b\\n\n","user_id":"u","event_type":"view","ts":2000}"#)
        try driver.commit()
        let records = driver.topicRecords("pairs-out")
        let objects = records.map { try? JSONSerialization.jsonObject(with: Data($0.value.utf8)) as? [String: Any] }
        XCTAssertEqual(objects.count, 2)
        XCTAssertEqual(objects[0]?["item_id"] as? String, escaped)
        XCTAssertEqual(objects[0]?["other_item"] as? String, quoted)
        XCTAssertEqual(objects[0]?["event_type"] as? String, "view")
        XCTAssertEqual(objects[1]?["item_id"] as? String, quoted)
        XCTAssertEqual(objects[1]?["other_item"] as? String, escaped)
        for record in records {
            XCTAssertEqual(record.value.components(separatedBy: #""item_id""#).count, 2, "item_id once: \(record.value)")
            XCTAssertEqual(record.value.components(separatedBy: #""other_item""#).count, 2, "other_item once: \(record.value)")
        }
        XCTAssertEqual(driver.redis["co_view:\(quoted)"], .zset([escaped: 1]))
        XCTAssertEqual(driver.redis["co_view:\(escaped)"], .zset([quoted: 1]))
    }

    /// Users idle past `within` leave the store: their keys' last changelog record is a
    /// tombstone, written when stream time passes their newest item's time + within.
    func testGroupsIdlePastTheWindowLeaveTheStore() throws {
        let topology = try TopologyFile.parse(Self.topology(last: 4, within: "5m"), file: "coview.yaml")
        let driver = try TopologyTestDriver(topology)
        for (i, user) in ["u1", "u2", "u3"].enumerated() {
            try driver.pipe(Event(user: user, item: user == "u3" ? "a" : "x", type: "view", ts: Self.base + Int64(i) * 1000).json)
            try driver.pipe(Event(user: user, item: user == "u3" ? "b" : "y", type: "view", ts: Self.base + Int64(i) * 1000 + 500).json)
        }
        try driver.commit()
        func storeKeys() -> [String: Bool] {  // user -> whether the last record holds a value
            var last: [String: Bool] = [:]
            for record in driver.changelog["coview-item-pairs-changelog"] ?? [] {
                let user = String(decoding: record.key.dropFirst(4), as: UTF8.self)
                last[user] = record.value != nil
            }
            return last
        }
        XCTAssertEqual(storeKeys(), ["u1": true, "u2": true, "u3": true])
        // u3 stays active; stream time passes u1's and u2's newest + 5 min.
        try driver.pipe(Event(user: "u3", item: "c", type: "view", ts: Self.base + 301_400).json)
        try driver.pipe(Event(user: "u3", item: "d", type: "view", ts: Self.base + 303_000).json)
        try driver.commit()
        XCTAssertEqual(storeKeys(), ["u1": false, "u2": false, "u3": true])
        // A late record of u1, within 5 min of its x and y by event time: they are
        // forgotten, so it pairs with nothing, and u1 starts anew.
        try driver.pipe(Event(user: "u1", item: "c", type: "view", ts: Self.base + 10_000).json)
        try driver.commit()
        guard case .zset(let c)? = driver.redis["co_view:c"] else { return XCTFail("no co_view:c") }
        XCTAssertEqual(Set(c.keys), ["a", "b", "d"], "c pairs with u3's a, b (within 5 min) and d, not with u1's forgotten x, y")
        XCTAssertNil(driver.redis["co_view:x"].flatMap { v -> Bool? in if case .zset(let z) = v, z["c"] != nil { return true }; return nil })
        XCTAssertEqual(storeKeys(), ["u1": true, "u2": false, "u3": true])
    }

    func testTheSwiftDSLBuildsTheSameTopology() throws {
        let builder = StreamsBuilder(application: "coview")
        builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["item_id"])
            .pairs("item-pairs", groupBy: ["user_id"], item: "item_id", last: 5)
            .decay("co-view", groupBy: ["item_id", "other_item"],
                   weights: Topology.Weights(field: "event_type", values: [.init("view", 1), .init("click", 2), .init("cart", 4), .init("purchase", 8)]),
                   halfLife: .seconds(3600))
            .toRedis(Topology.RedisSink(kind: .zset, key: "co_view:{item_id}", field: "{other_item}", value: "rank"))
        XCTAssertEqual(try builder.build(), try TopologyFile.parse(Self.topology(last: 5, within: nil), file: "coview.yaml"))
    }

    func testBadPairsConfigsNameTheField() {
        func error(_ nodes: String) -> String { configError(nodes: nodes) }
        let cases: [(String, String, String)] = [
            (error("  - name: p\n    pairs: {group_by: [user_id], last: 0}\n"),
             "nodes[0].pairs.last", "must be positive"),
            (error("  - name: p\n    pairs: {group_by: [user_id], last: 5000}\n"),
             "nodes[0].pairs.last", "must be at most 1000"),
            (error("  - name: p\n    pairs: {group_by: [user_id], within: 0s}\n"),
             "nodes[0].pairs.within", "expected a positive duration"),
            (error("  - name: p\n    pairs: {group_by: [user_id], other: item_id}\n"),
             "nodes[0].pairs.other", "is already the item"),
            (error("  - name: p\n    pairs: {group_by: [user_id]}\n  - name: s\n    input: p\n    aggregate: {group_by: [item_id], sum: [other_item]}\n"),
             "nodes[0].pairs.other", "'other_item' holds the paired item, a string"),
            (error("  - name: p\n    pairs: {group_by: [user_id], size: 3}\n"),
             "nodes[0].pairs.size", "unknown field 'size'"),
            (configError(nodes: "  - name: p\n    pairs: {group_by: [user_id]}\n  - name: j\n    input: p\n    join: {table: t, on: item_id, fields: [c], missing: dead_letter}\n",
                         tables: "tables:\n  t: {topic: items}\n"),
             "nodes[1].join.missing", "or pairs) and cannot be dead-lettered"),
        ]
        assertConfigErrors(cases)
    }
}
