import Foundation
import XCTest

/// Topologies/user-counts.yaml run by `eddy run` against LocalServices behind fault proxies
/// while an EventFeeder keeps producing; faults are injected one after another, and at the
/// end Redis is compared with UserCountsReference (0 lost, 0 duplicated).
final class FaultScenario {
    let services: LocalServices
    let application: String
    private let topology: String
    private let name: String
    private var config: String
    private let stopTimeoutMs: Int?
    let metricsPort: Int
    private let feeder: EventFeeder
    /// The current life of `eddy run`, if one was started.
    private var eddy: EddyCLI.Running?
    /// The logs of earlier lives.
    private var logs: [String] = []
    private var faults: [Fault.Kind: Int] = [:]
    /// Faults the current life saw (its counters start at 0).
    private var kindsThisLife: Set<Fault.Kind> = []
    /// Faults whose outage lines the log must hold: not those a life was stopped during
    /// (it may not have noticed the outage yet, and cannot see its end), nor those
    /// answered by refusing to start.
    private var reported: Set<Fault.Kind> = []
    private var sigterms = 0

    /// Services, topic and config of their own; the first chunk of events is on the topic
    /// (which it creates) when this returns.
    init(name: String, firstChunk: Int, commitIntervalMs: Int = 200, stopTimeoutMs: Int? = nil) throws {
        services = try LocalServices(faultProxies: true)
        self.name = name
        self.stopTimeoutMs = stopTimeoutMs
        application = "fault-\(name)"
        let topic = "clicks-\(name)"
        topology = try userCountsTopology(application: application, topic: topic, in: services.workDir)
        config = try services.writeRuntimeConfig(name: name, commitIntervalMs: commitIntervalMs, stopTimeoutMs: stopTimeoutMs)
        metricsPort = try LocalServices.freePort()
        feeder = EventFeeder(topic: topic, config: config, dir: services.workDir)
        feeder.produce(firstChunk)
        _ = try feeder.finish()
    }

    func stop() {
        if let eddy, eddy.isRunning {
            eddy.signal(SIGKILL)
            _ = try? eddy.wait(timeout: 10)
        }
        services.stop()
    }

    /// The next lives commit every `milliseconds` (same services, state and stop time-out).
    func commitEvery(milliseconds: Int) throws {
        config = try services.writeRuntimeConfig(name: name, commitIntervalMs: milliseconds, stopTimeoutMs: stopTimeoutMs)
    }

    /// Starts a new life of `eddy run`; by default waits (up to 30 s) until it was assigned
    /// its partitions.
    func startEddy(waitForAssignment: Bool = true) throws {
        let running = try EddyCLI.start(["run", topology, "--config", config, "--metrics-port", "\(metricsPort)"])
        eddy = running
        kindsThisLife = []
        let deadline = Date().addingTimeInterval(30)
        while waitForAssignment, !running.stderr.contains("assigned"), running.isRunning, Date() < deadline { usleep(50_000) }
    }

    /// Starts `eddy run --until-caught-up`; `end(_:)` waits for it.
    func startUntilCaughtUp() throws -> EddyCLI.Running {
        try EddyCLI.start(["run", topology, "--config", config, "--until-caught-up"])
    }

    /// Waits (at most `timeout`) for a run to end by itself; its output and how it ended.
    func end(_ running: EddyCLI.Running, timeout: TimeInterval = 120) throws -> (result: EddyCLI.Result, reason: Process.TerminationReason) {
        let result = try running.wait(timeout: timeout)
        logs.append(result.stderr)
        return (result, running.process.terminationReason)
    }

    /// Waits (at most 60 s) until the first keys are in Redis: a run is writing.
    func waitForFirstKeys() throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if case .integer(let n) = try services.redis().send("DBSIZE"), n > 0 { return }
            usleep(20_000)
        }
        throw ServiceError("nothing reached Redis within 60 s")
    }

    /// Waits (at most 60 s) until some task of the application has its watermark in Redis.
    func waitForAWatermark() throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if case .array(let keys) = try services.redis().send("KEYS", "eddy:\(application):wm:*"), !keys.isEmpty { return }
            usleep(50_000)
        }
        throw ServiceError("no watermark of \(application) reached Redis within 60 s")
    }

    /// The log of the current life so far.
    var currentLog: String { eddy?.stderr ?? "" }

    var isRunning: Bool { eddy?.isRunning ?? false }

    /// The current life, which ended by itself: its output and how it ended.
    func endOfCurrentLife() throws -> (result: EddyCLI.Result, reason: Process.TerminationReason) {
        guard let eddy else { throw ServiceError("no eddy run was started") }
        return try end(eddy, timeout: 10)
    }

    /// The current life refused to start because of `kind` (a clear reason, as it may):
    /// the fault's outage lines are not expected.
    func refusedToStart(because kind: Fault.Kind) {
        reported.remove(kind)
        kindsThisLife.remove(kind)
    }

    /// A fault of `kind` that the caller begins and ends itself (e.g. before a start);
    /// `reported`: its outage lines must be in the log.
    func fault(_ kind: Fault.Kind, reported isReported: Bool = true) -> Fault {
        faults[kind, default: 0] += 1
        kindsThisLife.insert(kind)
        if isReported { reported.insert(kind) }
        return Fault(kind, services: services, metricsPort: metricsPort)
    }

    /// A fault of `kind` for `seconds` while chunks of `chunk` events arrive (one just
    /// before, one halfway). With `sigterm`, the process is stopped with SIGTERM halfway
    /// (it must exit by itself within 30 s, not die of a signal), and a new life starts
    /// once the fault is over.
    func inject(_ kind: Fault.Kind, seconds: Int, sigterm: Bool = false, chunk: Int) throws {
        print("fault \(faults.values.reduce(0, +) + 1): \(kind.rawValue) for \(seconds) s\(sigterm ? ", SIGTERM halfway" : "")")
        let fault = fault(kind, reported: !sigterm)
        // Redis back empty is a loss to repair only once a task's whole state is in Redis
        // (its watermark exists); before that the task's first whole-state write repairs
        // it anyway, with nothing to say.
        if kind == .redisRestartEmpty { try waitForAWatermark() }
        feeder.produce(chunk)
        usleep(500_000)  // the chunk is flowing when the fault hits
        try fault.begin()
        sleep(UInt32(seconds / 2))
        feeder.produce(chunk)
        if sigterm { try terminate(during: kind) }
        sleep(UInt32(seconds - seconds / 2))
        try fault.end()
        if sigterm { try startEddy() }
    }

    /// Sends SIGTERM to the current life during a fault of `kind`: it must exit by itself
    /// within `limit` seconds, and say why if non-zero. Returns its exit status.
    @discardableResult
    func terminate(during kind: Fault.Kind, within limit: TimeInterval = 30) throws -> Int32 {
        guard let eddy else { throw ServiceError("no eddy run was started") }
        sigterms += 1
        let signalled = Date()
        eddy.signal(SIGTERM)
        let result = try eddy.wait(timeout: limit)
        print("SIGTERM during \(kind.rawValue): exited with status \(result.status) after \(String(format: "%.1f", Date().timeIntervalSince(signalled))) s")
        logs.append(result.stderr)
        // Earlier faults of this life whose outage had not ended for it yet when it was
        // stopped (a transactional step waits out its 15 s deadline after a short broker
        // drop) cannot have logged their end: only what it did log is asked of them.
        for earlier in reported.intersection(kindsThisLife) where FaultLog.lines(after: earlier).contains(where: { !result.stderr.contains($0) }) {
            reported.remove(earlier)
        }
        XCTAssertEqual(eddy.process.terminationReason, .exit,
                       "SIGTERM during a fault: eddy ended by \(eddy.ending); its log:\n\(EddyCLI.logTail(result.stderr))")
        if result.status != 0, let reason = FaultLog.stopReason(during: kind) {
            XCTAssertTrue(result.stderr.contains(reason),
                          "SIGTERM during \(kind.rawValue): exit status \(result.status) without \"\(reason)\"; its log:\n\(EddyCLI.logTail(result.stderr))")
        }
        return result.status
    }

    /// Waits (at most 30 s) until the current life has consumed `count` source records
    /// (its `eddy_records_in_total`).
    func waitForConsumed(_ count: Int) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let metrics = httpGet(port: metricsPort, path: "/metrics") ?? ""
            if let n = FaultLog.counter("eddy_records_in_total", application: application, in: metrics), Int(n) >= count { return }
            usleep(100_000)
        }
        throw ServiceError("eddy did not consume \(count) records within 30 s; its log:\n\(EddyCLI.logTail(currentLog))")
    }

    /// Waits (at most `timeout`, and while Redis keeps gaining events: a hung process fails
    /// after `stall` seconds without progress) until Redis holds every event produced, then
    /// checks that the current life still runs, that the faults were reported, that SIGTERM
    /// then stops it with status 0, and that Redis equals the reference.
    func finish(timeout: TimeInterval = 120, stall: TimeInterval = 45) throws {
        let reference = try UserCountsReference(jsonl: try feeder.finish())
        guard let eddy else { throw ServiceError("no eddy run was started") }
        let deadline = Date().addingTimeInterval(timeout)
        var fewestLost = Int.max, lastProgress = Date()
        while Date() < deadline, Date().timeIntervalSince(lastProgress) < stall, eddy.isRunning {
            let lost = try reference.compare(with: services.redis()).lost
            if lost == 0 { break }
            if lost < fewestLost { (fewestLost, lastProgress) = (lost, Date()) }
            sleep(1)
        }
        XCTAssertTrue(eddy.isRunning, "eddy stopped (\(eddy.ending)); its log:\n\(EddyCLI.logTail(eddy.stderr, 4000))")
        // An outage may be reported after the data is complete (a step that waits out its
        // deadline): the reports get 30 s more.
        var missing: [String] = []
        let reportDeadline = Date().addingTimeInterval(30)
        repeat {
            missing = FaultLog.missing(reported, kindsThisLife: kindsThisLife, log: (logs + [eddy.stderr]).joined(separator: "\n"),
                                       metrics: httpGet(port: metricsPort, path: "/metrics") ?? "", application: application)
            if !missing.isEmpty { sleep(1) }
        } while !missing.isEmpty && eddy.isRunning && Date() < reportDeadline
        XCTAssertEqual(missing, [], "the log's last lines:\n\(EddyCLI.logTail(eddy.stderr))")
        if eddy.isRunning {
            eddy.signal(SIGTERM)
            let stopped = try eddy.wait(timeout: 30)
            XCTAssertEqual(stopped.status, 0, EddyCLI.logTail(stopped.stderr))
        }
        logs.append(eddy.stderr)
        try check(reference)
    }

    /// Redis against the reference of every event produced; prints the summary line
    /// `N faults (kind n, …), M keys checked, L lost, D duplicated`.
    func check(_ reference: UserCountsReference? = nil) throws {
        let reference = try reference ?? UserCountsReference(jsonl: try feeder.finish())
        let check = try reference.compare(with: services.redis())
        let differences = try reference.differences(in: services.redis())
        let kinds = faults.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
        let withSigterm = sigterms > 0 ? "; \(sigterms) with SIGTERM" : ""
        print("\(faults.values.reduce(0, +)) faults (\(kinds.joined(separator: ", "))\(withSigterm)), \(check.keysChecked) keys checked, \(check.lost) lost, \(check.duplicated) duplicated")
        XCTAssertEqual(check.lost, 0)
        XCTAssertEqual(check.duplicated, 0)
        XCTAssertEqual(differences, [])
        if !differences.isEmpty || check.lost > 0 {
            print("--- last lives' logs ---\n" + logs.suffix(2).map { EddyCLI.logTail($0, 4000) }.joined(separator: "\n---\n"))
        }
    }
}
