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
        // With two members, static membership: Tansu 0.6.0 does not reliably expire the
        // session of a SIGKILLed member (the group can stay in a rebalance led by the dead
        // member); a restarted static member takes its old place instead.
        let configs = try (0..<processes).map {
            try services.writeRuntimeConfig(name: "crash-p\($0)", commitIntervalMs: 200, staticMembership: processes > 1)
        }
        // The input arrives in chunks while the processes run and die, as a live stream
        // would: every life has records to process when it is killed.
        var files: [String] = []
        func produceChunk() throws {
            let file = services.workDir.appendingPathComponent("crash-\(files.count).jsonl").path
            let gen = try EddyCLI.run(["generate", "--events", "\(events / (killTarget + 1))", "--users", "5000",
                                       "--seed", "\(99 + files.count)", "--topic", topic, "--partitions", "4",
                                       "--out", file, "--config", configs[0]])
            XCTAssertEqual(gen.status, 0, gen.stderr)
            files.append(file)
        }
        try produceChunk()

        var rng = SystemRandomNumberGenerator()
        var lives = 0
        var faulty = [Bool](repeating: false, count: processes)
        func start(_ i: Int, faults: Bool = true) throws -> EddyCLI.Running {
            lives += 1
            // Every other life may kill itself right after a Redis write.
            faulty[i] = faults && lives % 2 == 0
            let fault = faulty[i] ? ["EDDY_FAULT": "after-redis-write:0.5"] : [:]
            return try EddyCLI.start(["run", topology, "--config", configs[i]], environment: fault)
        }
        var running = try (0..<processes).map { try start($0) }
        var kills = 0, selfKills = 0
        while kills < killTarget {
            // Kill while it processes: after its partitions were assigned (a restarted
            // member waits for the killed one's session to expire first), at a random instant.
            let joinDeadline = Date().addingTimeInterval(30)
            while !running[0].stderr.contains("assigned"), running[0].isRunning, Date() < joinDeadline { usleep(50_000) }
            if files.count <= killTarget { try produceChunk() }
            usleep(UInt32.random(in: 200_000...1_500_000, using: &rng))
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
        while files.count <= killTarget { try produceChunk() }
        let reference = try UserCountsReference(jsonl: files)
        var final: EddyCLI.Result?
        if processes == 1 {
            for r in running where r.isRunning { r.signal(SIGTERM) }
            for r in running { _ = try? r.wait(timeout: 20) }
            // Let the killed member's session (6 s) expire before the last run joins.
            usleep(8_000_000)
            final = try EddyCLI.run(["run", topology, "--config", configs[0], "--until-caught-up", "--json"], timeout: 180)
            XCTAssertEqual(final!.status, 0, final!.stderr)
        } else {
            // The group finishes the input, without fault points (a self-kill at the last
            // commit would leave it unfinished).
            for i in 0..<processes where faulty[i] || !running[i].isRunning {
                if running[i].isRunning { running[i].signal(SIGKILL) } else if running[i].wasKilled { selfKills += 1 }
                _ = try running[i].wait(timeout: 10)
                kills += 1
                running[i] = try start(i, faults: false)
            }
            let deadline = Date().addingTimeInterval(180)
            while Date() < deadline, try reference.compare(with: try services.redis()).lost > 0 { sleep(1) }
            for r in running where r.isRunning { r.signal(SIGTERM) }
            for r in running { XCTAssertEqual(try r.wait(timeout: 20).status, 0, r.stderr) }
        }
        let check = try reference.compare(with: try services.redis())
        print("\(kills) kills (\(selfKills) at the after-redis-write fault point), \(check.keysChecked) keys checked, \(check.lost) lost, \(check.duplicated) duplicated")
        XCTAssertGreaterThanOrEqual(kills, killTarget)
        XCTAssertGreaterThan(selfKills, 0, "the after-redis-write crash point was never reached")
        if let final { XCTAssertLessThan(try runSummary(final.stdout)["records_in"] as! Int, events, "the killed runs made progress") }
        XCTAssertEqual(check.lost, 0)
        XCTAssertEqual(check.duplicated, 0)
        XCTAssertEqual(try reference.differences(in: try services.redis()), [])
    }
}
