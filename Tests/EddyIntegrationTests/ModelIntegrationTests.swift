import EddyRedis
import EddyTestSupport
import Foundation
import XCTest

/// `Topologies/model.yaml` against the real broker and Redis: generated clicks on four
/// partitions, two stream threads, the records re-keyed to the model's one task through its
/// repartition topic. Every `user:emb:{user}` and `item:emb:{item}` equals the plain model
/// of the update rule (`ModelReference`) over the records the rules apply, users idle past
/// a 1 h `state_ttl` leaving (most do, and many come back); then a reset
/// and a replay from the earliest offsets, and a run under at-least-once, write the same
/// bits.
final class ModelIntegrationTests: XCTestCase {
    private static let weights = ["view": 1.0, "click": 3.0, "cart": 5.0, "purchase": 10.0]
    private static let graceMs: Int64 = 60_000

    func testTheFactorsAreThePlainModelsAndAReplayWritesTheSameBits() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        // The shipped 7-day state_ttl as 1 hour: most of the 100 users of these 7 hours
        // leave, and many come back.
        let topology = try services.shippedTopology("model", topic: "clicks-model")
        let shipped = try String(contentsOfFile: topology, encoding: .utf8)
        XCTAssertTrue(shipped.contains("    state_ttl: 7d "))
        try shipped.replacingOccurrences(of: "    state_ttl: 7d ", with: "    state_ttl: 1h ").write(toFile: topology, atomically: true, encoding: .utf8)
        let config = try services.writeRuntimeConfig(name: "model", commitIntervalMs: 200, threads: 2)
        let file = services.workDir.appendingPathComponent("model.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "1500", "--users", "100", "--items", "150", "--seed", "13",
                                   "--topic", "clicks-model", "--partitions", "4", "--out", file, "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))

        let decoder = JSONDecoder()
        let all = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map { try decoder.decode(RecsReference.Event.self, from: Data($0.utf8)) }
        // Applied: time + grace below the least stream time over the source partitions
        // (every record counts for stream time, whatever its type).
        let watermark = try XCTUnwrap(RecsReference.watermark(all, partitions: 4))
        var reference = ModelReference(factors: 32, regularization: 0.1, alpha: 0.3, missingWeight: 0.3, userHistory: 100, itemHistory: 200,
                                       weights: Self.weights)
        reference.userTTLMs = 3_600_000
        let applied = all.filter { $0.ts + Self.graceMs < watermark }
        reference.apply(applied.map { ModelReference.Event(user: $0.user_id, item: $0.item_id, type: $0.event_type, ts: $0.ts) })
        XCTAssertGreaterThan(applied.count, 1300)
        XCTAssertGreaterThan(reference.left.count, 50)

        let redis = try services.redis()
        let written = try strings(redis)
        XCTAssertEqual(differences(written, prefix: "user:emb:", expected: reference.users), [])
        XCTAssertEqual(differences(written, prefix: "item:emb:", expected: reference.items), [])
        guard case .integer(let ttl) = try redis.send("TTL", "user:emb:\(reference.users.keys.sorted()[0])") else { return XCTFail("no TTL") }
        XCTAssertTrue((604_000...604_800).contains(ttl), "TTL \(ttl)")

        let reset = try EddyCLI.run(["reset", topology, "--config", config, "--to-earliest"])
        XCTAssertEqual(reset.status, 0, reset.stderr)
        _ = try redis.send("FLUSHALL")
        let replay = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(replay.status, 0, String(replay.stderr.suffix(3000)))
        XCTAssertEqual(try strings(redis), written, "the replay wrote other factors")

        // At-least-once without a failure applies the same records: the same bits. (Its
        // re-keyed task once took an upstream attempt's stream time only at that
        // upstream's next attempt, so a run to the end of its input applied nothing.)
        let alos = services.workDir.appendingPathComponent("model-alos.yaml").path
        try String(contentsOfFile: topology, encoding: .utf8).replacingOccurrences(of: "application: model\n", with: "application: model-alos\n")
            .write(toFile: alos, atomically: true, encoding: .utf8)
        let alosConfig = try services.writeRuntimeConfig(name: "runtime-alos", commitIntervalMs: 200, threads: 2, guarantee: "at_least_once")
        _ = try redis.send("FLUSHALL")
        let alosRun = try EddyCLI.run(["run", alos, "--config", alosConfig, "--until-caught-up"])
        XCTAssertEqual(alosRun.status, 0, String(alosRun.stderr.suffix(3000)))
        XCTAssertEqual(try strings(redis), written, "at-least-once wrote other factors")
    }

    /// Every model key and its value.
    private func strings(_ redis: RedisConnection) throws -> [String: String] {
        var out: [String: String] = [:]
        for pattern in ["user:emb:*", "item:emb:*"] {
            for key in try redis.send("KEYS", pattern).strings { out[key] = try redis.send("GET", key).string }
        }
        return out
    }

    /// Keys missing, unexpected, or whose vector differs from the reference by more than
    /// float32 rounding and the two solvers' (1e-4 relative).
    private func differences(_ written: [String: String], prefix: String, expected: [String: [Double]]) -> [String] {
        var out: [String] = []
        let got = written.filter { $0.key.hasPrefix(prefix) }
        for key in Set(got.keys).subtracting(expected.keys.map { prefix + $0 }).sorted() { out.append("\(key): not expected") }
        for (id, want) in expected.sorted(by: { $0.key < $1.key }) {
            guard let text = got[prefix + id] else { out.append("\(prefix)\(id): missing"); continue }
            guard let vector = try? JSONDecoder().decode([Float].self, from: Data(text.utf8)), vector.count == want.count else {
                out.append("\(prefix)\(id): \(text) is not \(want.count) numbers")
                continue
            }
            if zip(vector, want).contains(where: { abs(Double($0) - $1) > 1e-4 * Swift.max(1, abs($1)) }) {
                out.append("\(prefix)\(id): \(vector), expected \(want)")
            }
        }
        return Array(out.prefix(10))
    }
}
