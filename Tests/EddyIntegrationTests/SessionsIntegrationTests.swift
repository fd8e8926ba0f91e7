import EddyRedis
import Foundation
import XCTest

/// Session windows against real services (`SessionWorkload`): out-of-order input within and
/// beyond grace, two runs with the state directory lost in between (the second restores the
/// sessions, stream time and timers from their changelogs and must close the same sessions
/// at the same event times), then a replay from the earliest offsets: every time, Redis and
/// the dead letters equal the brute-force reference.
final class SessionsIntegrationTests: XCTestCase {
    func testSessionsMatchTheReferenceAcrossALostDiskAndAReplay() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let workload = try SessionWorkload(topic: "clicks-sessions", services: services)
        let topology = try SessionWorkload.topology(application: "sessions-it", topic: "clicks-sessions", in: services.workDir)
        let config = try services.writeRuntimeConfig(name: "sessions", commitIntervalMs: 200, threads: 2)
        var late = 0
        for chunk in 0..<2 {
            try workload.produceChunk(15_000)
            if chunk == 1 { try FileManager.default.removeItem(at: services.workDir.appendingPathComponent("state-sessions")) }
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            if chunk == 1 { XCTAssertTrue(run.stderr.contains("restored"), String(run.stderr.suffix(3000))) }
            late += (try runSummary(run.stdout)["dead_letters_by_reason"] as? [String: Int])?["late"] ?? 0
        }
        print("sessions: \(workload.closed.count) closed, \(workload.open.count) open, \(workload.late) late records")
        XCTAssertGreaterThan(workload.late, 0, "the input has records beyond grace")
        XCTAssertGreaterThan(workload.closed.count, 100)
        XCTAssertGreaterThan(workload.itemVisits.count, 100, "visits per item close too")
        XCTAssertGreaterThan(workload.open.count, 0)
        XCTAssertEqual(late, workload.late, "every late record dead-lettered once, with reason late")
        let redis = try services.redis()
        XCTAssertEqual(try workload.differences(in: redis), [])
        let check = try workload.compare(with: redis)
        XCTAssertEqual(check.lost, 0)
        XCTAssertEqual(check.duplicated, 0)
        // The output topics, read by a plain read_committed consumer: every closed session and item visit once.
        let written = try workload.compareTopics(services: services, skippingRepeats: false)
        XCTAssertEqual(written.records, workload.closed.count + workload.itemVisits.count)
        XCTAssertEqual(written.lost, 0)
        XCTAssertEqual(written.duplicated, 0)
        XCTAssertEqual(written.wrong, [])
        let dump1 = try EddyCLI.run(["dump", topology, "--config", config])
        XCTAssertEqual(dump1.status, 0, dump1.stderr)

        // A replay closes the same sessions at the same event times: the same Redis state.
        let reset = try EddyCLI.run(["reset", topology, "--config", config, "--to-earliest"])
        XCTAssertEqual(reset.status, 0, reset.stderr)
        let replay = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
        XCTAssertEqual(replay.status, 0, replay.stderr)
        XCTAssertEqual((try runSummary(replay.stdout)["dead_letters_by_reason"] as? [String: Int])?["late"], workload.late)
        let dump2 = try EddyCLI.run(["dump", topology, "--config", config])
        XCTAssertEqual(dump2.stdout, dump1.stdout)
        XCTAssertEqual(try workload.differences(in: redis), [])
    }
}
