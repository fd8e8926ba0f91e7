import EddyKafka
import EddyRedis
import EddyTestSupport
import Foundation
import XCTest

/// `Topologies/coview.yaml` against the real broker and Redis: generated clicks (in
/// event-time order, keyed by user), two stream threads, pairs re-keyed by item through the
/// repartition topic, two runs with more input between them, then a replay from the
/// earliest offsets. Every `co_view:{item}` zset and `co_view:totals` equals a brute-force
/// reference (`RecsReference`): every user's events in order, every pair listed, every
/// decayed count in closed form, each day's close keeping the top 50 per item.
final class CoViewIntegrationTests: XCTestCase {
    private static let halfLifeMs = 7 * 86_400_000.0
    private static let weights = ["view": 1.0, "click": 2.0, "cart": 4.0, "purchase": 8.0]

    func testTheCoViewMatrixMatchesAllPairsAcrossRunsAndAReplay() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let topology = try services.shippedTopology("coview", topic: "clicks-coview")
        let config = try services.writeRuntimeConfig(name: "coview", commitIntervalMs: 200, threads: 2)
        let redis = try services.redis()
        // One generated stream, in event-time order as a live one is, produced in two halves.
        let file = services.workDir.appendingPathComponent("coview.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "30000", "--users", "300", "--items", "400", "--seed", "71", "--out", file])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        try KafkaAdmin(config: services.kafkaConfig).createTopic("clicks-coview", partitions: 4)
        let producer = try KafkaProducer(config: services.kafkaConfig)
        var sent: [String] = []
        for half in [lines[..<15_000], lines[15_000...]] {
            for line in half {
                let user = try JSONDecoder().decode(RecsReference.Event.self, from: Data(line.utf8)).user_id
                try producer.send(topic: "clicks-coview", key: Array(user.utf8), value: Array(line.utf8))
            }
            try producer.flush()
            sent += half
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
            XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))
            XCTAssertEqual(try differences(redis, lines: sent), [])
        }
        let reset = try EddyCLI.run(["reset", topology, "--config", config, "--to-earliest"])
        XCTAssertEqual(reset.status, 0, reset.stderr)
        _ = try redis.send("FLUSHALL")
        let replay = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(replay.status, 0, String(replay.stderr.suffix(3000)))
        XCTAssertEqual(try differences(redis, lines: sent), [])
    }

    /// Redis against the reference, as a list of what differs (empty when equal).
    private func differences(_ redis: RedisConnection, lines: [String]) throws -> [String] {
        let decoder = JSONDecoder()
        let events = try lines.map { try decoder.decode(RecsReference.Event.self, from: Data($0.utf8)) }.filter { Self.weights[$0.event_type] != nil }
        let pairs = RecsReference.pairs(events, last: 20, withinMs: 1_800_000)
        XCTAssertGreaterThan(pairs.count, 10_000, "the data pairs many items")
        // coview.yaml keeps the top 50 per item, pruned as days (+ 1 h grace) close.
        // Stream time counts every record, whatever its type.
        let all = try lines.map { try decoder.decode(RecsReference.Event.self, from: Data($0.utf8)) }
        let closed = RecsReference.closedEpoch(all, partitions: 4, everyMs: 86_400_000, graceMs: 3_600_000)
        var expected = RecsReference.topKCoView(pairs, weights: Self.weights, halfLifeMs: Self.halfLifeMs, k: 50, everyMs: 86_400_000, closedThrough: closed)
            .mapKeys { "co_view:\($0)" }
        let unbounded = RecsReference.coView(pairs, weights: Self.weights, halfLifeMs: Self.halfLifeMs)
        XCTAssertNotNil(closed, "days closed")
        XCTAssertGreaterThan(unbounded.values.map(\.count).reduce(0, +), expected.values.map(\.count).reduce(0, +), "the top 50 pruned neighbours")
        var totals: [String: [RecsReference.Contribution]] = [:]
        for e in events { totals[e.item_id, default: []].append((Self.weights[e.event_type]!, e.ts)) }
        expected["co_view:totals"] = totals.mapValues { RecsReference.rank($0, halfLifeMs: Self.halfLifeMs) }
        return try zsetDifferences(redis, pattern: "co_view:*", expected: expected)
    }
}
