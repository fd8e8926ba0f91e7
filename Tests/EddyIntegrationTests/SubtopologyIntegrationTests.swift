import EddyKafka
import EddyRedis
import EddyTestSupport
import Foundation
import XCTest

/// Sub-topologies against the real broker and Redis: source records keyed by user re-keyed
/// (as records) to session windows per device, closed sessions re-keyed again (as
/// partials) to a count per top category, and totals per item re-keyed twice (an
/// aggregate of a re-keyed aggregate's rows). Two threads, two runs with more input
/// between them, then a replay: Redis equals the reference every time, and the replay's
/// dump equals the live run's byte for byte.
final class SubtopologyIntegrationTests: XCTestCase {
    private static let partitions = 4
    private static let gap: Int64 = 600_000, grace: Int64 = 86_400_000
    private var sent: [(user: Int, device: Int, time: Int64, type: String, item: Int, category: Int, qty: Int)] = []

    func testRecordsAndPartialsCrossTwoRepartitionHopsExactlyAcrossRunsAndAReplay() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-subtopologies"
        try KafkaAdmin(config: services.kafkaConfig).createTopic(topic, partitions: Self.partitions)
        let producer = try KafkaProducer(config: services.kafkaConfig)
        var random = TestRandom(seed: 31)
        var time: Int64 = 1_767_225_600_000
        func produce(_ count: Int) throws {
            for _ in 0..<count {
                time += Int64(1 + random.below(90_000))
                let e = (user: random.below(200), device: random.below(40), time: time, type: ["view", "click", "cart"][random.below(3)],
                         item: random.below(80), category: random.below(5), qty: 1 + random.below(4))
                sent.append(e)
                let json = #"{"user_id":"u\#(e.user)","device_id":"d\#(e.device)","ts":\#(e.time),"event_type":"\#(e.type)","item_id":"i\#(e.item)","category":"c\#(e.category)","qty":\#(e.qty)}"#
                try producer.send(topic: topic, key: Array("u\(e.user)".utf8), value: Array(json.utf8))
            }
            try producer.flush()
        }
        let topology = services.workDir.appendingPathComponent("subtopologies-topology.yaml").path
        try """
            application: subtopologies-it
            source: {topic: \(topic), key: user_id, timestamp: ts}
            nodes:
              - name: visits
                session: {group_by: [device_id], gap: 10m, grace: 1d}
                to_redis: {type: hash, key: "visit:{session_id}"}
              - name: by_category
                input: visits
                aggregate: {group_by: [top_category], sum: [events]}
                to_redis: {type: hash, key: "category:{top_category}"}
              - name: per_item
                aggregate: {group_by: [item_id], sum: [qty]}
              - name: items_per_total
                input: per_item
                aggregate: {group_by: [sum_qty]}
                to_redis: {type: zset, key: "items_per_total", member: "{sum_qty}", score: count}
            """.write(toFile: topology, atomically: true, encoding: .utf8)
        let config = try services.writeRuntimeConfig(name: "subtopologies", commitIntervalMs: 200, threads: 2)
        let redis = try services.redis()
        for _ in 0..<2 {
            try produce(6_000)
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
            XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))
            XCTAssertEqual(try differences(redis), [])
        }
        let dump = try EddyCLI.run(["dump", topology, "--config", config])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertEqual(try EddyCLI.run(["reset", topology, "--config", config, "--to-earliest"]).status, 0)
        let replay = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(replay.status, 0, String(replay.stderr.suffix(3000)))
        XCTAssertEqual(try differences(redis), [])
        XCTAssertEqual(try EddyCLI.run(["dump", topology, "--config", config]).stdout, dump.stdout, "a replay gives the same Redis state")
    }

    /// Redis against the reference (`ReKeyedSessionReference` for the sessions).
    private func differences(_ redis: RedisConnection) throws -> [String] {
        var sessions = ReKeyedSessionReference(sourcePartitions: Self.partitions, downstreamPartitions: Self.partitions, gapMs: Self.gap, graceMs: Self.grace)
        for e in sent.sorted(by: { $0.time < $1.time }) {
            sessions.add(RefEvent(key: "d\(e.device)", time: e.time, eventType: e.type, item: "i\(e.item)", category: "c\(e.category)"),
                         sourcePartition: kafkaPartition(ofKey: "u\(e.user)", partitions: Self.partitions))
        }
        XCTAssertEqual(sessions.late, [])
        let open = sessions.open
        var out: [String] = []
        for s in open {
            let h = UserCountsReference.hash(try redis.send("HGETALL", "visit:\(s.id)"))
            if h != s.redisFields, out.count < 10 { out.append("visit:\(s.id): \(h), expected \(s.redisFields)") }
        }
        let visitKeys = try UserCountsReference.keyCount(redis, pattern: "visit:*")
        if visitKeys != open.count { out.append("\(visitKeys) visit keys, expected \(open.count) open sessions") }
        var byCategory: [String: (count: Int, events: Int)] = [:]
        for s in sessions.closed {
            byCategory[s.topCategory, default: (0, 0)].count += 1
            byCategory[s.topCategory]!.events += s.events
        }
        for (category, c) in byCategory {
            let h = UserCountsReference.hash(try redis.send("HGETALL", "category:\(category)"))
            if h != ["count": "\(c.count)", "sum_events": "\(c.events)"] { out.append("category:\(category): \(h), expected \(c)") }
        }
        var perItem: [Int: Int] = [:]
        for e in sent { perItem[e.item, default: 0] += e.qty }
        var histogram: [String: Int] = [:]
        for total in perItem.values { histogram["\(total)", default: 0] += 1 }
        guard case .array(let flat) = try redis.send("ZRANGE", "items_per_total", "0", "-1", "WITHSCORES") else { return out + ["ZRANGE failed"] }
        let strings = flat.compactMap(\.string)
        var actual: [String: Int] = [:]
        for i in stride(from: 0, to: strings.count - 1, by: 2) { actual[strings[i]] = Int(strings[i + 1]) }
        if actual != histogram { out.append("items_per_total: \(actual.sorted { $0.key < $1.key }), expected \(histogram.sorted { $0.key < $1.key })") }
        return out
    }
}
