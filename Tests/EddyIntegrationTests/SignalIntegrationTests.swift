import Foundation
import XCTest

/// How `eddy run` takes signals: a broken pipe does not kill it, and a second stop
/// signal ends it at once even when the graceful stop the first one asked for cannot
/// happen.
final class SignalIntegrationTests: ServicesTestCase {
    /// Creates `topic` with a few records, so that `eddy run` gets past its topic check.
    private func makeSourceTopic(_ topic: String) throws {
        let config = try services.writeRuntimeConfig(name: "gen-\(topic)")
        let gen = try EddyCLI.run(["generate", "--events", "100", "--topic", topic, "--partitions", "2", "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)
    }

    /// Waits for `pattern`'s first capture group in the process's log.
    private func waitForLog(_ running: EddyCLI.Running, _ pattern: String, timeout: TimeInterval) -> String? {
        let regex = try! NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, running.isRunning {
            let log = running.stderr
            if let m = regex.firstMatch(in: log, range: NSRange(log.startIndex..., in: log)) {
                return m.numberOfRanges > 1 ? Range(m.range(at: 1), in: log).map { String(log[$0]) } : ""
            }
            usleep(50_000)
        }
        return nil
    }

    /// Clients of /metrics that reset their connection (SO_LINGER 0) before reading the
    /// answer. When the reset reaches the server before its read, the read fails
    /// (ECONNRESET) and the answer is written to a dead socket: EPIPE, and SIGPIPE. (When
    /// the request is read first, the write fails with ECONNRESET and no signal; half the
    /// clients send nothing, so that the read comes too late.) Eddy must ignore SIGPIPE and
    /// keep serving: it used to die with status 141 and no log line.
    func testResetMetricsConnectionsDoNotKillTheProcess() throws {
        try makeSourceTopic("clicks-sigpipe")
        let topology = try userCountsTopology(application: "sigpipe", topic: "clicks-sigpipe", in: services.workDir)
        let config = try services.writeRuntimeConfig(name: "run-sigpipe")
        let eddy = try EddyCLI.start(["run", topology, "--config", config])
        defer { if eddy.isRunning { eddy.signal(SIGKILL) } }
        let port = try XCTUnwrap(waitForLog(eddy, "metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics", timeout: 60).flatMap(Int.init),
                                 eddy.stderr)
        for i in 0..<200 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard connectLoopback(fd, port: port) else {
                close(fd)
                break  // eddy is gone: said below
            }
            if i.isMultiple(of: 2) {
                let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }  // SIGPIPE must not end the test
            }
            var linger = Foundation.linger(l_onoff: 1, l_linger: 0)  // close sends RST, not FIN
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Foundation.linger>.size))
            close(fd)
        }
        usleep(500_000)
        XCTAssertTrue(eddy.isRunning, "eddy died (\(eddy.process.terminationReason == .uncaughtSignal ? "signal" : "status") \(eddy.process.terminationStatus)); log:\n\(eddy.stderr.suffix(2000))")
        XCTAssertTrue(httpGet(port: port, path: "/metrics")?.hasPrefix("HTTP/1.1 200 OK") ?? false)
        eddy.signal(SIGTERM)
        XCTAssertEqual(try eddy.wait(timeout: 20).status, 0, eddy.stderr)
    }

    func testSecondSIGTERMEndsAStartUpThatCannotProgress() throws {
        try secondSignalEndsAHungStartUp(SIGTERM, expectedStatus: 143)
    }

    func testSecondSIGINTEndsAStartUpThatCannotProgress() throws {
        try secondSignalEndsAHungStartUp(SIGINT, expectedStatus: 130)
    }

    /// Start-up waits forever for a Redis that accepts and never answers; the first signal
    /// asks for a graceful stop (which cannot come), the second must end the process at
    /// once with 128 + the signal number and a log line saying so.
    private func secondSignalEndsAHungStartUp(_ sig: Int32, expectedStatus: Int32) throws {
        let topic = "clicks-hung-\(sig)"
        try makeSourceTopic(topic)
        let redis = try SilentServer()
        defer { redis.stop() }
        let topology = try userCountsTopology(application: "hung-\(sig)", topic: topic, in: services.workDir)
        let config = try services.writeRuntimeConfig(name: "run-hung-\(sig)", redisPort: redis.port)
        let eddy = try EddyCLI.start(["run", topology, "--config", config])
        defer { if eddy.isRunning { eddy.signal(SIGKILL) } }
        let deadline = Date().addingTimeInterval(60)
        var connected = false
        while !connected, eddy.isRunning, Date() < deadline { connected = redis.acceptClient(timeout: 0.5) }
        XCTAssertTrue(connected, "eddy never connected to Redis; log:\n\(eddy.stderr.suffix(2000))")
        guard connected else { return }
        usleep(200_000)  // let it send its first command and wait for the reply

        eddy.signal(sig)
        XCTAssertNotNil(waitForLog(eddy, "signal \(sig): (committing and stopping)", timeout: 5), eddy.stderr)
        XCTAssertTrue(eddy.isRunning, "the graceful stop cannot finish while start-up waits for Redis")
        let second = Date()
        eddy.signal(sig)
        let result = try eddy.wait(timeout: 5)
        XCTAssertLessThan(Date().timeIntervalSince(second), 2, "the second signal must end the process at once")
        XCTAssertEqual(result.status, expectedStatus, result.stderr)
        XCTAssertEqual(eddy.process.terminationReason, .exit, "eddy should exit, not be killed by the signal")
        XCTAssertTrue(result.stderr.contains("second signal \(sig)"), result.stderr)
    }
}
