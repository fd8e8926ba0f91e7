import EddyKafka
import EddyRedis
import EddyTestSupport
import Foundation
import XCTest

/// Two hops against the real broker and Redis: a per-(user, category) aggregate whose rows
/// are re-keyed by category into a second aggregate (users and events per category, through
/// a repartition topic), and a per-user total regrouped by one of its outputs (users per
/// amount spent: every event moves a row, and groups left empty must leave Redis). Two runs
/// with more input between them (the second starts from the stored state), then a replay
/// from the earliest offsets: Redis equals the reference computed here every time.
final class TwoHopIntegrationTests: XCTestCase {
    private static let partitions = 4
    private var sent: [(user: String, category: String, price: Double)] = []

    func testRowsOfAnAggregateRegroupedMatchTheReferenceAcrossRunsAndAReplay() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        try KafkaAdmin(config: services.kafkaConfig).createTopic("clicks-two-hop", partitions: Self.partitions)
        let producer = try KafkaProducer(config: services.kafkaConfig)
        var random = TestRandom(seed: 21)
        func produce(_ count: Int) throws {
            for _ in 0..<count {
                let user = "u\(random.below(300))", category = "c\(random.below(7))", price = Double(random.below(400)) / 4
                let ts = 1_767_225_600_000 + Int64(sent.count) * 10
                sent.append((user, category, price))
                try producer.send(topic: "clicks-two-hop", key: Array(user.utf8),
                                  value: Array(#"{"user_id":"\#(user)","category":"\#(category)","price":\#(price),"ts":\#(ts)}"#.utf8))
            }
            try producer.flush()
        }
        let topology = services.workDir.appendingPathComponent("two-hop-topology.yaml").path
        try """
            application: two-hop-it
            source: {topic: clicks-two-hop, key: user_id, timestamp: ts}
            nodes:
              - name: per_user_category
                aggregate: {group_by: [user_id, category], sum: [price]}
              - name: per_category
                input: per_user_category
                aggregate: {group_by: [category], sum: [count]}
                to_redis: {type: hash, key: "category:{category}"}
              - name: per_user
                aggregate: {group_by: [user_id], sum: [price]}
              - name: users_by_spend
                input: per_user
                aggregate: {group_by: [sum_price]}
                to_redis: {type: zset, key: "users_by_spend", member: "{sum_price}", score: count}
            """.write(toFile: topology, atomically: true, encoding: .utf8)
        let config = try services.writeRuntimeConfig(name: "two-hop", commitIntervalMs: 200, threads: 2)
        let redis = try services.redis()
        for _ in 0..<2 {
            try produce(15_000)
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
            XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))
            XCTAssertEqual(try differences(redis), [])
        }
        let dump = try EddyCLI.run(["dump", topology, "--config", config])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let reset = try EddyCLI.run(["reset", topology, "--config", config, "--to-earliest"])
        XCTAssertEqual(reset.status, 0, reset.stderr)
        let replay = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(replay.status, 0, String(replay.stderr.suffix(3000)))
        XCTAssertEqual(try differences(redis), [])
        XCTAssertEqual(try EddyCLI.run(["dump", topology, "--config", config]).stdout, dump.stdout, "a replay gives the same Redis state")
    }

    /// Redis against the reference: per category the number of users who bought in it and
    /// its events; per amount spent (exact: prices are quarters) the number of users.
    private func differences(_ redis: RedisConnection) throws -> [String] {
        var perUserCategory = Set<String>(), events: [String: Int] = [:], spend: [String: Double] = [:]
        for e in sent {
            perUserCategory.insert("\(e.user)\u{0}\(e.category)")
            events[e.category, default: 0] += 1
            spend[e.user, default: 0] += e.price
        }
        var users: [String: Int] = [:]
        for key in perUserCategory { users[String(key.split(separator: "\u{0}")[1]), default: 0] += 1 }
        var out: [String] = []
        for (category, n) in events {
            let h = UserCountsReference.hash(try redis.send("HGETALL", "category:\(category)"))
            if h["count"] != "\(users[category]!)" || h["sum_count"] != "\(n)" {
                out.append("category:\(category): \(h), expected count \(users[category]!), sum_count \(n)")
            }
        }
        var bySpend: [String: Int] = [:]
        for total in spend.values { bySpend[total == total.rounded() ? "\(Int(total))" : "\(total)", default: 0] += 1 }
        guard case .array(let flat) = try redis.send("ZRANGE", "users_by_spend", "0", "-1", "WITHSCORES") else { return ["ZRANGE failed"] }
        let strings = flat.compactMap(\.string)
        var actual: [String: Int] = [:]
        for i in stride(from: 0, to: strings.count - 1, by: 2) { actual[strings[i]] = Int(strings[i + 1]) }
        if actual != bySpend {
            let wrong = Set(actual.keys).symmetricDifference(bySpend.keys).sorted().prefix(5)
            out.append("users_by_spend: \(actual.count) members, expected \(bySpend.count); differing members \(Array(wrong)); equal counts: \(actual.filter { bySpend[$0.key] == $0.value }.count)")
        }
        return out
    }
}
