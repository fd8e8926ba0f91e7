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
