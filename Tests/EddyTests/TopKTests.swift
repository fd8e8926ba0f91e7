import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// A decay's `top_k` under co-view, in the topology test driver, against
/// `RecsReference.topKCoView`: the brute-force model of the rules in `Topology.TopK`
/// (epochs closing in order, each keeping exactly the k best per item).
final class TopKTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000
    private static let hour: Int64 = 3_600_000
    private static let graceMs: Int64 = 600_000
    private static let weights = ["view": 1.0, "click": 2.0]


    private static func topology(k: Int) -> String {
        """
        application: coview
        source: {topic: clicks, key: user_id, timestamp: ts, required: [item_id]}
        nodes:
          - name: item-pairs
            pairs: {group_by: [user_id], item: item_id, last: 4}
          - name: co-view
            input: item-pairs
            decay:
              group_by: [item_id, other_item]
              half_life: 1h
              weights: {field: event_type, values: {view: 1, click: 2}}
              top_k: {k: \(k), every: 1h, grace: 10m}
            to_redis: {type: zset, key: "co_view:{item_id}", member: "{other_item}", score: rank}
        """
    }

    /// Events over 8 hours, out of order by up to 5 minutes (inside the grace): 60 users on
    /// two partitions, 12 items, so items gather more neighbours than k.
    private func events(_ count: Int, seed: UInt64) -> [TestClick] {
        var random = TestRandom(seed: seed)
        return (0..<count).map { i in
            let ts = Self.base + Int64(i) * 8 * Self.hour / Int64(count) + Int64(random.below(300_000))
            return TestClick(user: random.below(60), item: "i\(random.below(12))", type: random.below(4) == 0 ? "click" : "view", ts: ts)
        }
    }

    private func run(_ input: [TestClick], k: Int, commitEvery: Int, restartAt: Int? = nil) throws -> TopologyTestDriver {
        try TopologyTestDriver.run(Self.topology(k: k), input, commitEvery: commitEvery, restartAt: restartAt)
    }

    /// The last epoch closed once every partition's stream time is in: stream time (the
    /// least over the partitions) has passed its end + grace.
    private func closedThrough(_ input: [TestClick]) -> Int64? {
        let watermark = TestClick.watermark(input)
        var closed: Int64?
        var e = Self.base / Self.hour - 1
        while (e + 1) * Self.hour + Self.graceMs < watermark {
            closed = e
            e += 1
        }
        return closed
    }

    private func reference(_ input: [TestClick], k: Int) -> [String: [String: Double]] {
        let pairs = RecsReference.pairs(input.map(\.recs), last: 4, withinMs: nil)
        return RecsReference.topKCoView(pairs, weights: Self.weights, halfLifeMs: Double(Self.hour), k: k, everyMs: Self.hour,
                                        closedThrough: closedThrough(input))
    }

    private func zsets(_ driver: TopologyTestDriver) -> [String: [String: Double]] {
        var out: [String: [String: Double]] = [:]
        for (key, value) in driver.redis {
            if case .zset(let z) = value { out[String(key.dropFirst("co_view:".count))] = z }
        }
        return out
    }

    private func assertCoView(_ got: [String: [String: Double]], equals expected: [String: [String: Double]],
                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(got.keys), Set(expected.keys), file: file, line: line)
        for (item, others) in expected {
            XCTAssertEqual(Set(got[item]?.keys ?? [:].keys), Set(others.keys), "neighbours of \(item)", file: file, line: line)
            for (other, rank) in others {
                XCTAssertEqual(got[item]?[other] ?? .nan, rank, accuracy: 1e-9, "\(item) ~ \(other)", file: file, line: line)
            }
        }
    }

    func testEachEpochKeepsExactlyTheKBestNeighboursOfEveryItem() throws {
        var input = events(3000, seed: 21)
        let driver = try run(input, k: 3, commitEvery: 250)
        let expected = reference(input, k: 3)
        XCTAssertNotNil(closedThrough(input), "epochs closed")
        assertCoView(zsets(driver), equals: expected)

        // Events far later on both partitions close every epoch of the input: each item
        // keeps at most 3 neighbours, in Redis as in the store.
        let late = [TestClick(user: 1000, item: "z0", type: "view", ts: Self.base + 30 * Self.hour),
                    TestClick(user: 1001, item: "z1", type: "view", ts: Self.base + 30 * Self.hour)]
        for e in late { try driver.pipe(e.json, partition: e.partition) }
        try driver.commit()
        input += late
        let closedAll = reference(input, k: 3)
        XCTAssertTrue(closedAll.values.allSatisfy { $0.count <= 3 })
        let unbounded = RecsReference.coView(RecsReference.pairs(input.map(\.recs), last: 4, withinMs: nil),
                                             weights: Self.weights, halfLifeMs: Double(Self.hour))
        XCTAssertEqual(unbounded.values.map(\.count).reduce(0, +), 12 * 11, "every item was seen with every other")
        assertCoView(zsets(driver), equals: closedAll)
        XCTAssertLessThanOrEqual(try driver.storeEntries("co-view"), 2 * 12 * 3, "the store keeps no more than k per item (a kept value and a total each)")
    }

    /// The closes depend on the input alone: commits every 7 records with a restart, or
    /// every 400, give the same bits.
    func testCommitsAndRestartsDoNotChangeWhatIsKept() throws {
        let input = events(2000, seed: 22)
        let often = try run(input, k: 2, commitEvery: 7, restartAt: 1100)
        let seldom = try run(input, k: 2, commitEvery: 400)
        XCTAssertEqual(zsets(often), zsets(seldom))
        assertCoView(zsets(often), equals: reference(input, k: 2))
    }

    /// A pair more than the grace behind its task's stream time is skipped and counted; it
    /// would belong to an epoch that may have closed.
    func testLatePairsAreSkippedAndCounted() throws {
        let t = Self.base + 5 * Self.hour
        let input = [
            TestClick(user: 0, item: "a", type: "view", ts: t), TestClick(user: 0, item: "b", type: "view", ts: t + 60_000),
            TestClick(user: 2, item: "a", type: "click", ts: t - Self.hour), TestClick(user: 2, item: "b", type: "click", ts: t - Self.hour + 1),
        ]
        let driver = try run(input, k: 3, commitEvery: 100)
        XCTAssertEqual(driver.lateRecords, 2, "u2's pair, both ways")
        let pairs = RecsReference.pairs(Array(input.prefix(2)).map(\.recs), last: 4, withinMs: nil)
        assertCoView(zsets(driver), equals: RecsReference.coView(pairs, weights: Self.weights, halfLifeMs: Double(Self.hour)))
    }

    /// A pair late for its upstream task's stream time stays late after a restart: the
    /// source's tasks keep their stream time (a timers store of their own), and the item's
    /// task skips a partial of an epoch it has closed.
    func testALatePairIsLateAfterARestartToo() throws {
        let t = Self.base + 10 * Self.hour
        let before = [TestClick(user: 0, item: "a", type: "view", ts: t), TestClick(user: 0, item: "b", type: "view", ts: t + 60_000),
                      TestClick(user: 2, item: "c", type: "view", ts: t + 30 * 60_000)]
        let late = [TestClick(user: 4, item: "a", type: "click", ts: t - 10 * 60_000), TestClick(user: 4, item: "b", type: "click", ts: t - 10 * 60_000 + 1)]
        func run(restart: Bool) throws -> (redis: [String: [String: Double]], late: Int) {
            let driver = try TopologyTestDriver(try TopologyFile.parse(Self.topology(k: 3), file: "coview.yaml"))
            for e in before { try driver.pipe(e.json) }
            try driver.commit()
            if restart { try driver.restart() }
            for e in late { try driver.pipe(e.json) }
            try driver.commit()
            return (zsets(driver), driver.lateRecords)
        }
        let straight = try run(restart: false), restarted = try run(restart: true)
        XCTAssertEqual(straight.late, 2, "u4's pair, both ways")
        XCTAssertEqual(restarted.late, straight.late)
        XCTAssertEqual(restarted.redis, straight.redis)
        let pairs = RecsReference.pairs(before.map(\.recs), last: 4, withinMs: nil)
        assertCoView(straight.redis, equals: RecsReference.coView(pairs, weights: Self.weights, halfLifeMs: Double(Self.hour)))
    }

    /// A top K that needs no re-key (per user, in the source's tasks): the records add to
    /// their epoch and their total in the task itself, and epochs close on its stream time.
    func testATopKInTheSourcesTasksKeepsEachUsersBestItems() throws {
        let topology = try TopologyFile.parse("""
            application: favourites
            source: {topic: clicks, key: user_id, timestamp: ts, required: [item_id]}
            nodes:
              - name: favourites
                decay:
                  group_by: [user_id, item_id]
                  half_life: 1h
                  weights: {field: event_type, values: {view: 1, click: 2}}
                  top_k: {k: 2, every: 1h, grace: 10m}
                to_redis: {type: zset, key: "top:{user_id}", member: "{item_id}", score: rank}
            """, file: "favourites.yaml")
        let driver = try TopologyTestDriver(topology)
        var input = events(1500, seed: 23)
        input += [TestClick(user: 1000, item: "z", type: "view", ts: Self.base + 12 * Self.hour)]  // closes the input's epochs
        for (i, e) in input.enumerated() {
            try driver.pipe(e.json)
            if i % 97 == 96 { try driver.commit() }
        }
        try driver.commit()
        let closed = (Self.base + 12 * Self.hour - Self.graceMs - 1) / Self.hour - 1
        let expected = RecsReference.topKCoView(input.map { ("u\($0.user)", $0.item, $0.type, $0.ts) }, weights: Self.weights,
                                                halfLifeMs: Double(Self.hour), k: 2, everyMs: Self.hour, closedThrough: closed)
        var got: [String: [String: Double]] = [:]
        for (key, value) in driver.redis {
            if case .zset(let z) = value { got[String(key.dropFirst("top:".count))] = z }
        }
        XCTAssertTrue(expected.filter { $0.key != "u1000" }.values.allSatisfy { $0.count <= 2 })
        assertCoView(got, equals: expected)
    }

    func testTheSwiftDSLBuildsTheSameTopology() throws {
        let builder = StreamsBuilder(application: "coview")
        builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["item_id"])
            .pairs("item-pairs", groupBy: ["user_id"], item: "item_id", last: 4)
            .decay("co-view", groupBy: ["item_id", "other_item"],
                   weights: Topology.Weights(field: "event_type", values: [.init("view", 1), .init("click", 2)]),
                   halfLife: .seconds(3600), topK: Topology.TopK(k: 3, everyMs: Self.hour, graceMs: Self.graceMs))
            .toRedis(Topology.RedisSink(kind: .zset, key: "co_view:{item_id}", field: "{other_item}", value: "rank"))
        XCTAssertEqual(try builder.build(), try TopologyFile.parse(Self.topology(k: 3), file: "coview.yaml"))
    }

    func testBadTopKConfigsNameTheField() {
        func decay(_ groupBy: String, _ topK: String) -> String {
            configError(nodes: "  - name: d\n    decay: {group_by: \(groupBy), half_life: 1h, weights: {field: event_type, values: {view: 1}}, top_k: \(topK)}\n")
        }
        assertConfigErrors([
            (decay("[item_id]", "{k: 5}"), "nodes[0].decay.group_by", "group by at least two fields"),
            (decay("[item_id, user_id]", "{k: 0}"), "nodes[0].decay.top_k.k", "must be positive"),
            (decay("[item_id, user_id]", "{k: 20000}"), "nodes[0].decay.top_k.k", "must be at most 10000"),
            (decay("[item_id, user_id]", "{k: 5, every: 0s}"), "nodes[0].decay.top_k.every", "expected a positive duration"),
            (decay("[item_id, user_id]", "{k: 5, size: 3}"), "nodes[0].decay.top_k.size", "unknown field 'size'"),
            (decay("[item_id, user_id]", "{every: 1d}"), "nodes[0].decay.top_k", "missing field 'k'"),
        ])
    }
}
