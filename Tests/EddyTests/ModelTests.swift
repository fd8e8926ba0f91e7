import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// The `model` operator (online implicit ALS) in the topology test driver, against
/// `ModelReference`: a plain reimplementation of the update rule (each coordinate's
/// minimizer from the objective's terms over every vector, no Gram) applied to the records
/// the rules say are applied, in their order.
final class ModelTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000
    private static let graceMs: Int64 = 600_000
    private static let weights = ["view": 1.0, "click": 3.0]


    private static let topology = """
        application: mf
        source: {topic: clicks, key: user_id, timestamp: ts, required: [item_id, event_type]}
        nodes:
          - name: model
            model:
              weights: {field: event_type, values: {view: 1, click: 3}}
              factors: 6
              regularization: 0.5
              alpha: 4
              missing_weight: 0.5
              user_history: 5
              item_history: 7
              grace: 10m
            to_redis:
              - {type: string, key: "user:emb:{user_id}", ttl: 7d}
              - {type: string, key: "item:emb:{item_id}"}
        """

    /// Events over 4 hours on two partitions, out of order by up to 5 minutes (inside the
    /// grace), a few of a type the model skips; 14 users and 9 items, so histories overflow
    /// their limits (5 items per user, 7 users per item).
    private func events(_ count: Int, seed: UInt64) -> [TestClick] {
        var random = TestRandom(seed: seed)
        return (0..<count).map { i in
            let ts = Self.base + Int64(i) * 4 * 3_600_000 / Int64(count) + Int64(random.below(300_000))
            let type = ["view", "view", "click", "search"][random.below(4)]
            return TestClick(user: random.below(14), item: "i\(random.below(9))", type: type, ts: ts)
        }
    }

    private func run(_ input: [TestClick], commitEvery: Int, restartAt: Int? = nil, topology: String = topology) throws -> TopologyTestDriver {
        try TopologyTestDriver.run(topology, input, commitEvery: commitEvery, restartAt: restartAt)
    }

    private static let topologyWithTTL = topology.replacingOccurrences(of: "    to_redis:\n", with: "    state_ttl: 1h\n    to_redis:\n")

    /// Over 4 hours: everyone in the first two; users 7–13 then stop; users 10–13 come back
    /// in the last hour, after more than an hour away.
    private func eventsWithIdleUsers(_ count: Int, seed: UInt64) -> [TestClick] {
        var random = TestRandom(seed: seed)
        return (0..<count).map { i in
            let offset = Int64(i) * 4 * 3_600_000 / Int64(count)
            let hour = offset / 3_600_000
            let user = hour < 2 ? random.below(14) : hour < 3 || random.below(2) == 0 ? random.below(7) : 10 + random.below(4)
            return TestClick(user: user, item: "i\(random.below(9))", type: ["view", "view", "click"][random.below(3)],
                             ts: Self.base + offset + Int64(random.below(300_000)))
        }
    }

    /// The records applied once everything is in: those with time + grace < stream time
    /// after the re-key, the least over the partitions of their largest time.
    private func applied(_ input: [TestClick]) -> [ModelReference.Event] {
        let watermark = TestClick.watermark(input)
        return input.filter { $0.ts + Self.graceMs < watermark }.map(\.model)
    }

    private func reference(_ input: [ModelReference.Event], userTTLMs: Int64? = nil) -> ModelReference {
        var model = ModelReference(factors: 6, regularization: 0.5, alpha: 4, missingWeight: 0.5, userHistory: 5, itemHistory: 7, weights: Self.weights)
        model.userTTLMs = userTTLMs
        model.apply(input)
        return model
    }

    private func vectors(_ redis: [String: TestRedisValue], prefix: String) throws -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for (key, value) in redis where key.hasPrefix(prefix) {
            guard case .string(let text) = value else { XCTFail("\(key) is not a string"); continue }
            out[String(key.dropFirst(prefix.count))] = try JSONDecoder().decode([Float].self, from: Data(text.utf8)).map(Double.init)
        }
        return out
    }

    private func assertClose(_ actual: [String: [Double]], _ expected: [String: [Double]], _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(actual.keys), Set(expected.keys), what, file: file, line: line)
        for (id, e) in expected {
            guard let a = actual[id] else { continue }
            XCTAssertEqual(a.count, e.count, file: file, line: line)
            for (x, y) in zip(a, e) where abs(x - y) > 1e-5 + 1e-5 * abs(y) {
                XCTFail("\(what) \(id): \(a) is not \(e)", file: file, line: line)
                break
            }
        }
    }

    func testFactorsAreThoseOfThePlainModelOfTheUpdateRule() throws {
        let input = events(400, seed: 3)
        let driver = try run(input, commitEvery: 25)
        defer { driver.close() }
        let expected = reference(applied(input))
        XCTAssertGreaterThan(expected.users.count, 10)
        assertClose(try vectors(driver.redis, prefix: "user:emb:"), expected.users, "user")
        assertClose(try vectors(driver.redis, prefix: "item:emb:"), expected.items, "item")
        XCTAssertEqual(driver.ttl("user:emb:u1"), 7 * 86_400)
        XCTAssertNil(driver.ttl("item:emb:i1"))
        XCTAssertEqual(driver.lateRecords, 0)
        // What the grace still holds is not applied yet: the model lags by it.
        XCTAssertLessThan(applied(input).count, input.count)
    }

    /// The model learns: after the stream, a user's own items score above the items they
    /// never touched, on average.
    func testAUsersItemsScoreAboveTheOthers() throws {
        let input = events(400, seed: 5)
        let driver = try run(input, commitEvery: 50)
        defer { driver.close() }
        let users = try vectors(driver.redis, prefix: "user:emb:"), items = try vectors(driver.redis, prefix: "item:emb:")
        var touched = 0.0, untouched = 0.0, nTouched = 0.0, nUntouched = 0.0
        for (user, p) in users {
            let mine = Set(applied(input).filter { $0.user == user && Self.weights[$0.type] != nil }.map(\.item))
            for (item, q) in items {
                let score = zip(p, q).reduce(0) { $0 + $1.0 * $1.1 }
                if mine.contains(item) { touched += score; nTouched += 1 } else { untouched += score; nUntouched += 1 }
            }
        }
        XCTAssertGreaterThan(touched / nTouched, untouched / nUntouched + 0.2)
    }

    /// Commits every 7 records with a restart, against every 400 with the partitions'
    /// records arriving one partition after the other: the same bits in Redis.
    func testAReplayAndAnotherInterleavingGiveTheSameBits() throws {
        let input = events(400, seed: 11)
        let a = try run(input, commitEvery: 7, restartAt: 190)
        defer { a.close() }
        let byPartition = input.filter { $0.partition == 0 } + input.filter { $0.partition == 1 }
        let b = try run(byPartition, commitEvery: 400)
        defer { b.close() }
        XCTAssertEqual(a.redis, b.redis)
        XCTAssertGreaterThan(a.redis.count, 20)
    }

    /// state_ttl: users idle past it leave the model and Redis (and the items' histories); a
    /// user that comes back starts afresh. Against the plain model with the same rule.
    func testUsersIdlePastTheStateTTLLeaveAndComeBackAfresh() throws {
        let input = eventsWithIdleUsers(500, seed: 13)
        let driver = try run(input, commitEvery: 20, topology: Self.topologyWithTTL)
        defer { driver.close() }
        let expected = reference(applied(input), userTTLMs: 3_600_000)
        XCTAssertEqual(Set(expected.left), ["u7", "u8", "u9", "u10", "u11", "u12", "u13"])
        XCTAssertEqual(Set(expected.users.keys), Set((0..<7).map { "u\($0)" } + ["u10", "u11", "u12", "u13"]), "u7–u9 left for good")
        assertClose(try vectors(driver.redis, prefix: "user:emb:"), expected.users, "user")
        assertClose(try vectors(driver.redis, prefix: "item:emb:"), expected.items, "item")
        // Without the TTL the model differs (so the rule above is what decided it).
        let kept = reference(applied(input))
        XCTAssertEqual(kept.users.count, 14)
        XCTAssertNotEqual(kept.users["u10"], expected.users["u10"])
    }

    /// The TTL's clock is the applied records' time: a restart and another interleaving of
    /// the partitions expire the same users at the same point, to the bit.
    func testTheStateTTLGivesTheSameBitsOnAReplayAndAnotherInterleaving() throws {
        let input = eventsWithIdleUsers(500, seed: 17)
        let a = try run(input, commitEvery: 7, restartAt: 260, topology: Self.topologyWithTTL)
        defer { a.close() }
        let byPartition = input.filter { $0.partition == 0 } + input.filter { $0.partition == 1 }
        let b = try run(byPartition, commitEvery: 500, topology: Self.topologyWithTTL)
        defer { b.close() }
        XCTAssertEqual(a.redis, b.redis)
        XCTAssertNil(a.redis["user:emb:u8"])
    }

    /// Pipes `clicks` (committing every 20) into `driver`, then commits.
    private func pipe(_ clicks: ArraySlice<TestClick>, into driver: TopologyTestDriver) throws {
        for (i, e) in clicks.enumerated() {
            try driver.pipe(e.json, partition: e.partition)
            if i % 20 == 19 { try driver.commit() }
        }
        try driver.commit()
    }

    /// A model that ran without a TTL has users without a clock: given a TTL, each user's
    /// starts at the last record applied, so users 7–13, idle since the second hour, leave
    /// an hour after the change.
    func testATTLSetOnAModelThatRanWithoutOneExpiresItsIdleUsers() throws {
        let input = eventsWithIdleUsers(500, seed: 19).filter { !(10..<14).contains($0.user) || $0.ts < Self.base + 3 * 3_600_000 }
        let switchAt = input.firstIndex { $0.ts > Self.base + 2 * 3_600_000 + 600_000 }!
        let driver = try TopologyTestDriver(try TopologyFile.parse(Self.topology, file: "t.yaml"), partitions: 2)
        defer { driver.close() }
        try pipe(input[..<switchAt], into: driver)
        XCTAssertNotNil(driver.redis["user:emb:u9"])
        try driver.restart(with: try TopologyFile.parse(Self.topologyWithTTL, file: "t.yaml"))
        try pipe(input[switchAt...], into: driver)
        for user in 7..<14 { XCTAssertNil(driver.redis["user:emb:u\(user)"], "u\(user)") }
        for user in 0..<7 { XCTAssertNotNil(driver.redis["user:emb:u\(user)"], "u\(user)") }
        XCTAssertEqual(driver.expiredGroups, 7)
    }

    /// A TTL taken away and set again: the times of before are stale (u3 was active
    /// meanwhile) and must not expire anyone.
    func testATTLTakenAwayAndSetAgainExpiresNoUserActiveMeanwhile() throws {
        let input = events(600, seed: 23)  // 14 users, each active every few minutes over 4 hours
        let withTTL = try TopologyFile.parse(Self.topologyWithTTL, file: "t.yaml"), without = try TopologyFile.parse(Self.topology, file: "t.yaml")
        let driver = try TopologyTestDriver(withTTL, partitions: 2)
        defer { driver.close() }
        try pipe(input[..<150], into: driver)  // hour 1, with the TTL
        try driver.restart(with: without)
        try pipe(input[150..<450], into: driver)  // hours 2 and 3, without
        try driver.restart(with: withTTL)
        try pipe(input[450...], into: driver)  // hour 4, with it again
        XCTAssertEqual(driver.expiredGroups, 0)
        XCTAssertEqual((0..<14).filter { driver.redis["user:emb:u\($0)"] != nil }.count, 14)
    }

    func testALateRecordIsSkippedAndCounted() throws {
        var input = events(200, seed: 7)
        // 20 minutes behind its partition's stream time: later than the 10-minute grace.
        let last = input.last(where: { $0.partition == 0 })!
        let late = TestClick(user: 0, item: "i-late", type: "click", ts: last.ts - 1_200_000)
        input.append(late)
        input += events(60, seed: 8).map { TestClick(user: $0.user, item: $0.item, type: $0.type, ts: $0.ts + 5 * 3_600_000) }
        let driver = try run(input, commitEvery: 10)
        defer { driver.close() }
        XCTAssertEqual(driver.lateRecords, 1)
        XCTAssertNil(driver.redis["item:emb:i-late"])
        let expected = reference(applied(input).filter { $0.item != "i-late" })
        assertClose(try vectors(driver.redis, prefix: "user:emb:"), expected.users, "user")
    }

    func testTheSwiftDSLBuildsTheSameTopology() throws {
        let builder = StreamsBuilder(application: "mf")
        builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["item_id", "event_type"])
            .model("model", Topology.MatrixFactorization(weights: Topology.Weights(field: "event_type", values: [.init("view", 1), .init("click", 3)]),
                                                         factors: 6, regularization: 0.5, alpha: 4, missingWeight: 0.5, userHistory: 5, itemHistory: 7,
                                                         graceMs: Self.graceMs))
            .toRedis(Topology.RedisSink(kind: .string, key: "user:emb:{user_id}", ttlSeconds: 7 * 86_400))
            .toRedis(Topology.RedisSink(kind: .string, key: "item:emb:{item_id}"))
        XCTAssertEqual(try builder.build(), try TopologyFile.parse(Self.topology, file: "mf.yaml"))
        let withTTL = StreamsBuilder(application: "mf")
        withTTL.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["item_id", "event_type"])
            .model("model", Topology.MatrixFactorization(weights: Topology.Weights(field: "event_type", values: [.init("view", 1), .init("click", 3)]),
                                                         factors: 6, regularization: 0.5, alpha: 4, missingWeight: 0.5, userHistory: 5, itemHistory: 7,
                                                         graceMs: Self.graceMs))
            .stateTTL(.seconds(3_600))
            .toRedis(Topology.RedisSink(kind: .string, key: "user:emb:{user_id}", ttlSeconds: 7 * 86_400))
            .toRedis(Topology.RedisSink(kind: .string, key: "item:emb:{item_id}"))
        XCTAssertEqual(try withTTL.build(), try TopologyFile.parse(Self.topologyWithTTL, file: "mf.yaml"))
    }

    func testBadModelConfigsNameTheField() {
        func model(_ fields: String, sink: String = #"{type: string, key: "user:emb:{user_id}"}"#) -> String {
            configError(nodes: "  - name: m\n    model: {weights: {field: event_type, values: {view: 1}}\(fields)}\n    to_redis: \(sink)\n")
        }
        assertConfigErrors([
            (model(", factors: 0"), "nodes[0].model.factors", "must be positive"),
            (model(", factors: 1000"), "nodes[0].model.factors", "at most 256"),
            (model(", alpha: -1"), "nodes[0].model.alpha", "must be a positive number"),
            (model(", regularization: 0"), "nodes[0].model.regularization", "must be a positive number"),
            (model(", missing_weight: 2"), "nodes[0].model.missing_weight", "in (0, 1]"),
            (model(", item: user_id"), "nodes[0].model.item", "also the user field"),
            (model(", grace: -1m"), "nodes[0].model.grace", "duration"),
            (model(", rank: 3"), "nodes[0].model.rank", "unknown field 'rank'"),
            (configError(nodes: "  - name: m\n    model: {weights: {field: event_type, values: {view: 1}}}\n    state_ttl: 0s\n"), "nodes[0].state_ttl", "a positive duration"),
            (model("", sink: #"{type: zset, key: "m", member: "{user_id}"}"#), "nodes[0].to_redis[0].type", "use type: string"),
            (model("", sink: #"{type: string, key: "emb:{user_id}:{item_id}"}"#), "nodes[0].to_redis[0].key", "exactly one of {user_id}"),
            (model("", sink: #"{type: string, key: "emb:{user_id}", value: item_id}"#), "nodes[0].to_redis[0].value", "writes 'factors'"),
            (configError(nodes: "  - name: m\n    model: {factors: 8}\n"), "nodes[0].model", "missing field 'weights'"),
            (configError(nodes: "  - name: m\n    model: {weights: {field: event_type, values: {view: 1}}}\n  - name: n\n    input: m\n    filter: {field: x, exists: true}\n"),
             "nodes[1].input", "forwards no records"),
        ])
    }
}
