import EddyRedis
import Foundation
import XCTest

/// `eddy reset` and `eddy run --from`: a replay of the same input rebuilds the same Redis
/// state; a replay from a time processes exactly the records from then on.
final class ReplayIntegrationTests: XCTestCase {
    func testResetToEarliestReproducesTheSameRedisDump() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topology = try userCountsTopology(application: "counts-replay", topic: "clicks-replay", in: services.workDir, file: "user-and-item-counts")
        let config = try services.writeRuntimeConfig(name: "replay")
        let file = services.workDir.appendingPathComponent("replay.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "40000", "--users", "1000", "--seed", "21",
                                   "--topic", "clicks-replay", "--partitions", "4", "--out", file, "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)

        let first = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(first.status, 0, first.stderr)
        var reference = try UserCountsReference(jsonl: file)
        reference.items = true
        XCTAssertEqual(try reference.differences(in: try services.redis()), [])
        let dump1 = try EddyCLI.run(["dump", topology, "--config", config])
        XCTAssertEqual(dump1.status, 0, dump1.stderr)
        XCTAssertEqual(dump1.stdout.split(separator: "\n").count, 2 * reference.count.count + reference.itemCount.count + 1,
                       "two keys per user, one per item, the ranking")

        let reset = try EddyCLI.run(["reset", topology, "--config", config, "--to-earliest"])
        XCTAssertEqual(reset.status, 0, reset.stderr)
        XCTAssertTrue(reset.stdout.contains("local state removed"), reset.stdout)
        let redis = try services.redis()
        XCTAssertEqual(try redis.send("DBSIZE"), .integer(0), "the reset cleared the application's keys")

        let second = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try runSummary(second.stdout)["records_in"] as? Int, 40_000, "everything was replayed")
        let dump2 = try EddyCLI.run(["dump", topology, "--config", config])
        XCTAssertEqual(dump2.stdout, dump1.stdout)
    }

    /// Issue 13, item 6: decayed sums (with a trend) and float sums re-keyed through
    /// repartition topics come out of a replay bit for bit as from the live run, although
    /// the replay combines and merges its partials otherwise: the live run commits every
    /// 50 ms on two threads, the replay every 5 s on one. With floating-point merges the
    /// scores differed in their last digits.
    func testAReplayOfReKeyedFloatAggregatesGivesTheSameDumpBitForBit() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-floats"
        let topology = services.workDir.appendingPathComponent("floats.yaml").path
        try """
            application: floats-replay
            source: {topic: \(topic), format: json, key: user_id, timestamp: ts, required: [event_type, item_id, category]}
            nodes:
              - name: popularity
                decay:
                  group_by: [item_id]
                  half_life: 10m
                  trend_against: 1d
                  weights: {field: event_type, values: {view: 1, click: 3, cart: 5, purchase: 10}}
                to_redis:
                  - {type: hash, key: "item:{item_id}:popularity"}
                  - {type: zset, key: "item:trending", member: "{item_id}", score: trend}
              - name: spend
                aggregate: {group_by: [category], sum: [price]}
                to_redis: {type: hash, key: "category:{category}:spend"}
            """.write(toFile: topology, atomically: true, encoding: .utf8)
        let live = try services.writeRuntimeConfig(name: "floats-live", commitIntervalMs: 50, threads: 2)
        let file = services.workDir.appendingPathComponent("floats.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "60000", "--users", "2000", "--items", "300", "--seed", "8",
                                   "--topic", topic, "--partitions", "4", "--out", file, "--config", live])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let first = try EddyCLI.run(["run", topology, "--config", live, "--until-caught-up"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let dump1 = try EddyCLI.run(["dump", topology, "--config", live])
        XCTAssertEqual(dump1.status, 0, dump1.stderr)
        // Every item's score against the closed form Σ w·2^((t − latest)/h), to 1e-9.
        let weights = ["view": 1.0, "click": 3, "cart": 5, "purchase": 10]
        var events: [String: [(w: Double, t: Double)]] = [:]
        var categories: Set<String> = []
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            let e = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            categories.insert(e["category"] as! String)
            guard let w = weights[e["event_type"] as! String] else { continue }
            events[e["item_id"] as! String, default: []].append((w, (e["ts"] as! NSNumber).doubleValue))
        }
        let redis = try services.redis()
        for (item, list) in events {
            let latest = list.map(\.t).max()!
            let expected = list.reduce(0.0) { $0 + $1.w * exp2(($1.t - latest) / 600_000) }
            guard let score = try redis.send("HGET", "item:\(item):popularity", "score").string, let got = Double(score) else {
                return XCTFail("no score for \(item)")
            }
            XCTAssertEqual(got, expected, accuracy: expected * 1e-9, item)
        }

        XCTAssertEqual(try EddyCLI.run(["reset", topology, "--config", live, "--to-earliest"]).status, 0)
        let replay = try services.writeRuntimeConfig(name: "floats-replay", commitIntervalMs: 5_000, threads: 1)
        let second = try EddyCLI.run(["run", topology, "--config", replay, "--until-caught-up"])
        XCTAssertEqual(second.status, 0, second.stderr)
        let dump2 = try EddyCLI.run(["dump", topology, "--config", replay])
        XCTAssertEqual(dump1.stdout.split(separator: "\n").count, events.count + 1 + categories.count, "a hash per item, a zset, a hash per category")
        XCTAssertEqual(dump2.stdout, dump1.stdout)
    }

    func testRunFromADatetimeProcessesOnlyLaterRecords() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-from"
        let topology = try userCountsTopology(application: "counts-from", topic: topic, in: services.workDir, file: "user-and-item-counts")
        let config = try services.writeRuntimeConfig(name: "from")
        let early = services.workDir.appendingPathComponent("early.jsonl").path
        let late = services.workDir.appendingPathComponent("late.jsonl").path
        XCTAssertEqual(try EddyCLI.run(["generate", "--events", "20000", "--users", "500", "--seed", "1",
                                        "--topic", topic, "--partitions", "2", "--out", early, "--config", config]).status, 0)
        usleep(1_500_000)
        let cut = ISO8601DateFormatter().string(from: Date())
        usleep(1_500_000)
        XCTAssertEqual(try EddyCLI.run(["generate", "--events", "15000", "--users", "500", "--seed", "2",
                                        "--topic", topic, "--partitions", "2", "--out", late, "--config", config]).status, 0)

        // A full run first, so the replay has state and keys to discard.
        XCTAssertEqual(try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"]).status, 0)
        let replay = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json", "--from", cut])
        XCTAssertEqual(replay.status, 0, replay.stderr)
        let summary = try runSummary(replay.stdout)
        XCTAssertEqual(summary["records_processed"] as? Int, 15_000, "exactly the records produced after \(cut)")
        var reference = try UserCountsReference(jsonl: late)
        reference.items = true
        XCTAssertEqual(try reference.differences(in: try services.redis()), [])
    }
}
