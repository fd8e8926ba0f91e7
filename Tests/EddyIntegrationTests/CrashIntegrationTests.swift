import EddyRedis
import Foundation
import XCTest

/// SIGKILL at random instants and at the most dangerous one (after the Redis write, before
/// state and offsets are committed), restart, repeat; at the end Redis must equal the
/// reference computed from the input once. Small here; `scripts/crash-test` runs it with
/// 1M events and 20+ kills (EDDY_CRASH_EVENTS, EDDY_CRASH_KILLS).
final class CrashIntegrationTests: XCTestCase {
    private var events: Int { Int(ProcessInfo.processInfo.environment["EDDY_CRASH_EVENTS"] ?? "") ?? 120_000 }
    private var killTarget: Int { Int(ProcessInfo.processInfo.environment["EDDY_CRASH_KILLS"] ?? "") ?? 5 }

    func testOneProcessKilledRepeatedlyLosesAndDuplicatesNothing() throws {
        try crashTest(processes: 1)
    }

    func testTwoProcessesInOneGroupOneKilledRepeatedlyLoseAndDuplicateNothing() throws {
        try crashTest(processes: 2)
    }

    private func crashTest(processes: Int) throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-crash"
        let app = "crash-\(processes)"
        let topology = try userCountsTopology(application: app, topic: topic, in: services.workDir)
        let configs = try (0..<processes).map { try services.writeRuntimeConfig(name: "crash-p\($0)", commitIntervalMs: 200) }
        let file = services.workDir.appendingPathComponent("crash.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "\(events)", "--users", "5000", "--seed", "99",
                                   "--topic", topic, "--partitions", "4", "--out", file, "--config", configs[0]])
        XCTAssertEqual(gen.status, 0, gen.stderr)

        var rng = SystemRandomNumberGenerator()
        var lives = 0
        func start(_ i: Int) throws -> EddyCLI.Running {
            lives += 1
            // Every other life may kill itself right after a Redis write.
            let fault = lives % 2 == 0 ? ["EDDY_FAULT": "after-redis-write:0.5"] : [:]
            return try EddyCLI.start(["run", topology, "--config", configs[i]], environment: fault)
        }
        var running = try (0..<processes).map { try start($0) }
        var kills = 0, selfKills = 0
        while kills < killTarget {
            // Kill while it processes: after its partitions were assigned (a restarted
            // member waits for the killed one's session to expire first), at a random instant.
            let joinDeadline = Date().addingTimeInterval(30)
            while !running[0].stderr.contains("assigned"), running[0].isRunning, Date() < joinDeadline { usleep(50_000) }
            usleep(UInt32.random(in: 200_000...2_500_000, using: &rng))
            for i in 0..<processes where running[i].wasKilled {
                kills += 1
                selfKills += 1
                running[i] = try start(i)
            }
            // Process 0 is the one killed; in the two-process test process 1 lives on and
            // takes over its partitions at every rebalance.
            let victim = 0
            if running[victim].isRunning {
                running[victim].signal(SIGKILL)
                _ = try running[victim].wait(timeout: 10)
                kills += 1
                running[victim] = try start(victim)
            }
        }
        for r in running where r.isRunning { r.signal(SIGTERM) }
        for r in running { _ = try? r.wait(timeout: 20) }

        let final = try EddyCLI.run(["run", topology, "--config", configs[0], "--until-caught-up", "--json"])
        XCTAssertEqual(final.status, 0, final.stderr)
        let reference = try UserCountsReference(jsonl: file)
        let check = try reference.compare(with: try services.redis())
        print("\(kills) kills (\(selfKills) at the after-redis-write fault point), \(check.keysChecked) keys checked, \(check.lost) lost, \(check.duplicated) duplicated")
        XCTAssertGreaterThanOrEqual(kills, killTarget)
        XCTAssertGreaterThan(selfKills, 0, "the after-redis-write crash point was never reached")
        XCTAssertLessThan(try runSummary(final.stdout)["records_in"] as! Int, events, "the killed runs made progress")
        XCTAssertEqual(check.lost, 0)
        XCTAssertEqual(check.duplicated, 0)
        XCTAssertEqual(try reference.differences(in: try services.redis()), [])
    }
}
