import EddyRedis
import Foundation
import XCTest

/// SIGKILL at random instants and at the most dangerous ones (after the Kafka commit,
/// after the Redis write, during restore), restart, repeat; at the end Redis must equal the
/// reference computed from the input once. The topology has per-user stores and a weighted
/// count per item re-keyed through a repartition topic (Topologies/user-and-item-counts.yaml). Small here; `scripts/crash-test` runs it with
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

    /// The same input produced without Kafka keys: every record is re-keyed through the
    /// source repartition topic, which the source tasks also read (two inputs per task).
    /// Two more kills: the first life's commit that triggers `after-kafka-commit` holds only
    /// re-keyed records, so the next life has nothing to restore and the second
    /// `during-restore` life is the one that reaches that point.
    func testUnkeyedInputKilledRepeatedlyLosesAndDuplicatesNothing() throws {
        try crashTest(processes: 1, unkeyed: true, extraKills: 2)
    }

    /// Session windows (state, stream time and timers in changelogs; closed sessions
    /// forwarded to a per-user count) after a join with a catalog table, and visits per item
    /// (sessions re-keyed as records through a repartition topic, counted per item): every
    /// session and visit closes exactly once, in Redis and in the output topics.
    func testSessionsKilledRepeatedlyLoseAndDuplicateNoSession() throws {
        try crashTest(processes: 1, sessions: true)
    }

    /// `Topologies/recs.yaml`: sessions, recent items, popularity (global, per category,
    /// trending), users' categories, co-view and its totals, cart versions — five nodes
    /// that re-key. Every family equals the brute-force reference, and the whole Redis
    /// state (sessions included) equals byte for byte that of one run over the same input
    /// without kills, in another application: a lost or repeated event would show in some
    /// exact sum.
    func testRecsTopologyKilledRepeatedlyLosesAndDuplicatesNothing() throws {
        try crashTest(processes: 1, recs: true)
    }

    /// The fault points the victim's lives (process 0's) cycle through (none: only the
    /// test's SIGKILLs). The other process of the two-process test runs without: it is the
    /// survivor that takes the victim's partitions over.
    private static let faultCycle: [String?] = [nil, "after-kafka-commit:1", "during-restore:1", "after-redis-write:0.5", "before-kafka-commit:1"]

    private func crashTest(processes: Int, sessions: Bool = false, recs: Bool = false, unkeyed: Bool = false, extraKills: Int = 0) throws {
        let killTarget = self.killTarget + extraKills
        let services = try LocalServices()
        defer { services.stop() }
        let topic = sessions ? "clicks-crash-sessions" : recs ? "clicks-crash-recs" : unkeyed ? "clicks-crash-unkeyed" : "clicks-crash"
        let app = sessions ? "crash-sessions" : unkeyed ? "crash-unkeyed" : "crash-\(processes)"
        let workload = sessions ? try SessionWorkload(topic: topic, services: services) : nil
        let recsWorkload = recs ? try RecsWorkload(topic: topic, services: services) : nil
        let topology = try workload.map { _ in try SessionWorkload.topology(application: app, topic: topic, in: services.workDir) }
            ?? recsWorkload.map { _ in try services.shippedTopology("recs", topic: topic) }
            ?? userCountsTopology(application: app, topic: topic, in: services.workDir, file: "user-and-item-counts")
        // Static membership: Tansu 0.6.0 does not reliably expire the session of a SIGKILLed
        // member (the group can stay in a rebalance led by the dead member); a restarted
        // static member takes its old place instead.
        let configs = try (0..<processes).map {
            try services.writeRuntimeConfig(name: "crash-p\($0)", commitIntervalMs: 200, staticMembership: true)
        }
        let stateDirs = (0..<processes).map { services.workDir.appendingPathComponent("state-crash-p\($0)") }
        // The input arrives in chunks while the processes run and die, as a live stream
        // would: every life has records to process when it is killed.
        var files: [String] = []
        func produceChunk() throws {
            if let workload {
                try workload.produceChunk(events / (killTarget + 1))
                files.append(topic)
                return
            }
            if let recsWorkload {
                try recsWorkload.produceChunk(events / (killTarget + 1))
                files.append(topic)
                return
            }
            let file = services.workDir.appendingPathComponent("crash-\(files.count).jsonl").path
            let gen = try EddyCLI.run(["generate", "--events", "\(events / (killTarget + 1))", "--users", "5000",
                                       "--seed", "\(99 + files.count)", "--topic", topic, "--partitions", "4",
                                       "--out", file, "--config", configs[0]] + (unkeyed ? ["--unkeyed"] : []))
            XCTAssertEqual(gen.status, 0, gen.stderr)
            files.append(file)
        }
        try produceChunk()

        var rng = SystemRandomNumberGenerator()
        var lives = 0
        var victimLives = 0
        var stateWipes = 0
        var selfKills: [String: Int] = [:]
        var logs: [String] = []
        /// Per process: is its life armed at a point it reaches for sure (probability 1)?
        var armedForSure = [Bool](repeating: false, count: processes)
        func start(_ i: Int, faults: Bool = true) throws -> EddyCLI.Running {
            lives += 1
            if i == 0 { victimLives += 1 }
            let fault = faults && i == 0 ? Self.faultCycle[victimLives % Self.faultCycle.count] : nil
            armedForSure[i] = fault?.hasSuffix(":1") == true
            // Some lives of the victim start on an empty disk (a lost machine): they must
            // restore their tasks from the changelogs.
            if faults, i == 0, victimLives % 3 == 0 || fault?.hasPrefix("during-restore") == true, FileManager.default.fileExists(atPath: stateDirs[i].path) {
                try FileManager.default.removeItem(at: stateDirs[i])
                stateWipes += 1
                print("life \(lives) of process \(i) starts on an empty disk")
            }
            print("life \(lives) of process \(i): fault point \(fault ?? "none")")
            return try EddyCLI.start(["run", topology, "--config", configs[i]], environment: fault.map { ["EDDY_FAULT": $0] } ?? [:])
        }
        /// Counts a life that killed itself at a fault point; true if it did.
        func noteSelfKill(_ r: EddyCLI.Running) -> Bool {
            logs.append(r.stderr)
            guard r.wasKilled, let line = r.stderr.components(separatedBy: "\n").first(where: { $0.hasPrefix("EDDY_FAULT: killing the process at ") }) else { return false }
            selfKills[String(line.dropFirst("EDDY_FAULT: killing the process at ".count)), default: 0] += 1
            return true
        }
        var running = try (0..<processes).map { try start($0) }
        var kills = 0
        while kills < killTarget {
            // Kill while it processes: after its partitions were assigned, at a random instant.
            let joinDeadline = Date().addingTimeInterval(30)
            while !running[0].stderr.contains("assigned"), running[0].isRunning, Date() < joinDeadline { usleep(50_000) }
            if files.count <= killTarget { try produceChunk() }
            if armedForSure[0] {
                // Let it reach its fault point rather than killing it first.
                let deadline = Date().addingTimeInterval(15)
                while running[0].isRunning, Date() < deadline { usleep(50_000) }
            } else {
                usleep(UInt32.random(in: 200_000...1_500_000, using: &rng))
            }
            var restarted = false
            for i in 0..<processes where !running[i].isRunning {
                // A life that ended other than at its fault point (an error exit, a crash)
                // fails the test: waiting for it to be killed would loop for ever.
                guard noteSelfKill(running[i]) else {
                    let ended = try running[i].wait(timeout: 1)
                    return XCTFail("process \(i) ended by itself (status \(ended.status)): \(ended.stderr.suffix(3000))")
                }
                kills += 1
                running[i] = try start(i)
                restarted = true
            }
            // Process 0 is the one killed; in the two-process test process 1 lives on and
            // takes over its partitions at every rebalance. A life just restarted gets its
            // turn first.
            if !restarted, running[0].isRunning {
                running[0].signal(SIGKILL)
                _ = try running[0].wait(timeout: 10)
                logs.append(running[0].stderr)
                kills += 1
                running[0] = try start(0)
            }
        }
        while files.count <= killTarget { try produceChunk() }
        let reference: any CrashReference
        if let workload {
            reference = workload
        } else if let recsWorkload {
            reference = RecsExpectedState(recsWorkload.events, partitions: RecsWorkload.partitions)
        } else {
            var counts = try UserCountsReference(jsonl: files)
            counts.items = true
            // Exact however a user's re-keyed records interleave (sums are fixed-point).
            reference = counts
        }
        // The group finishes the input without fault points (a self-kill at the last commit
        // would leave it unfinished), then stops cleanly. recs.yaml's finishes it in one
        // run to the end instead: at 1M events its re-keyed backlog takes longer than any
        // fixed wait (2026-12-07: the state still behind after 500 s).
        for i in 0..<processes {
            if running[i].isRunning { running[i].signal(SIGKILL) }
            _ = try running[i].wait(timeout: 10)
            if !noteSelfKill(running[i]) { kills += 1 }
            if !recs { running[i] = try start(i, faults: false) }
        }
        // Both runs of recs.yaml below go through all the input's re-keyed records (pairs, the model).
        let runLimit = max(600, Double(events) / 400)
        if recs {
            let finish = try EddyCLI.run(["run", topology, "--config", configs[0], "--until-caught-up"], timeout: runLimit)
            XCTAssertEqual(finish.status, 0, String(finish.stderr.suffix(3000)))
        } else {
            // What the kills left unprocessed takes longer with more events (scripts/crash-test
            // runs 1M; 180 s was too short for the sessions' 1M on a busy machine).
            let deadline = Date().addingTimeInterval(max(180, Double(events) / 2_000))
            while Date() < deadline, try reference.compare(with: try services.redis()).lost > 0 { sleep(1) }
            for r in running where r.isRunning { r.signal(SIGTERM) }
            for r in running { XCTAssertEqual(try r.wait(timeout: 20).status, 0, String(r.stderr.suffix(3000))) }
        }

        let check = try reference.compare(with: try services.redis())
        let points = selfKills.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("\(kills) kills (at fault points: \(points); \(stateWipes) restarts on an empty disk), \(check.keysChecked) keys checked, \(check.lost) lost, \(check.duplicated) duplicated")
        XCTAssertGreaterThanOrEqual(kills, killTarget)
        for point in ["after-kafka-commit", "during-restore", "before-kafka-commit"] {
            XCTAssertGreaterThan(selfKills[point] ?? 0, 0, "the \(point) crash point was never reached")
        }
        XCTAssertEqual(check.lost, 0)
        XCTAssertEqual(check.duplicated, 0)
        let differences = try reference.differences(in: try services.redis())
        XCTAssertEqual(differences, [])
        if let workload {
            // The output topics of closed sessions and visits, read as the docs tell a consumer on a broker
            // that delivers aborted transactions (Tansu 0.6.0) to.
            let topic = try workload.compareTopics(services: services, skippingRepeats: true)
            print("output topics: \(topic.records) records read (aborted attempts' included), \(workload.closed.count) sessions and \(workload.itemVisits.count) item visits closed, \(topic.lost) lost, \(topic.duplicated) duplicated after skipping repeated ids")
            XCTAssertEqual(topic.lost, 0)
            XCTAssertEqual(topic.duplicated, 0)
            XCTAssertEqual(topic.wrong, [])
        }
        if recs {
            // The same input once more, without kills, in an application of its own (its own
            // group and internal topics) writing the same keys into an emptied Redis.
            let dump = try EddyCLI.run(["dump", topology, "--config", configs[0]])
            XCTAssertEqual(dump.status, 0, dump.stderr)
            _ = try services.redis().send("FLUSHALL")
            let once = services.workDir.appendingPathComponent("recs-once.yaml").path
            try String(contentsOfFile: topology, encoding: .utf8).replacingOccurrences(of: "application: recs\n", with: "application: recs-once\n")
                .write(toFile: once, atomically: true, encoding: .utf8)
            let onceConfig = try services.writeRuntimeConfig(name: "crash-once", commitIntervalMs: 1_000)
            let run = try EddyCLI.run(["run", once, "--config", onceConfig, "--until-caught-up"], timeout: runLimit)
            XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))
            let onceDump = try EddyCLI.run(["dump", once, "--config", onceConfig])
            let lines = dump.stdout.split(separator: "\n"), onceLines = onceDump.stdout.split(separator: "\n")
            let differing = Set(lines).symmetricDifference(onceLines)
            print("recs: \(lines.count) keys after the kills, \(onceLines.count) in the run without kills, \(differing.count) lines differ")
            XCTAssertGreaterThan(lines.count, 1_000)
            XCTAssertEqual(differing.count, 0, "first differing lines: \(differing.sorted().prefix(6).map { String($0.prefix(300)) })")
        }
        if !differences.isEmpty || check.lost > 0 {
            for r in running { logs.append(r.stderr) }
            print("--- last lives' logs ---\n" + logs.suffix(3).map { String($0.suffix(4000)) }.joined(separator: "\n---\n"))
        }
    }
}

/// What a crash test checks Redis against, once the input is all processed.
protocol CrashReference {
    func compare(with redis: RedisConnection) throws -> (keysChecked: Int, lost: Int, duplicated: Int)
    func differences(in redis: RedisConnection, limit: Int) throws -> [String]
}

extension CrashReference {
    func differences(in redis: RedisConnection) throws -> [String] { try differences(in: redis, limit: 20) }
}

extension UserCountsReference: CrashReference {}
extension SessionWorkload: CrashReference {}
