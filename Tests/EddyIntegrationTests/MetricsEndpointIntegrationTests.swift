import EddyHTTP
import EddyStreams
import Foundation
import Logging
import XCTest

/// The metrics endpoint over real sockets, with the clients that stalled the old
/// single-threaded server: idle connections, resets, half-sent requests, a taken port.
final class MetricsEndpointIntegrationTests: XCTestCase {
    private let metrics = StreamsMetrics()
    private var servers: [HTTPServer] = []

    override func tearDown() {
        servers.forEach { $0.stop() }
        servers = []
    }

    private func startEndpoint(idleTimeout: Duration = MetricsEndpoint.defaultIdleTimeout) throws -> Int {
        let metrics = self.metrics
        let server = try MetricsEndpoint.start(port: 0, idleTimeout: idleTimeout, logger: Logger(label: "metrics-test")) {
            metrics.prometheusText(application: "it")
        }
        servers.append(server)
        return server.port
    }

    func testTwentyFiveIdleConnectionsStayOpenWhileAScrapeAnswersWithinASecond() throws {
        let port = try startEndpoint()
        let idle = try (0..<25).map { _ in try TestConnection(port: port) }
        let scrape = try TestConnection(port: port).exchange(get("/metrics"))
        XCTAssertTrue(scrape.response.hasPrefix("HTTP/1.1 200 OK"), scrape.response)
        XCTAssertLessThan(scrape.seconds, 1)
        // They were held, not dropped: each still gets its own answer.
        for connection in idle {
            XCTAssertTrue(try connection.exchange(get("/healthz")).response.hasPrefix("HTTP/1.1 200 OK"))
        }
    }

    func testConnectionsResetMidRequestOrMidResponseDoNotAffectLaterScrapes() throws {
        let port = try startEndpoint()
        for _ in 0..<10 {
            try TestConnection(port: port).send("GET /metrics HTTP/1.1\r\nHo").reset()
            try TestConnection(port: port).send(get("/metrics")).reset()
        }
        let scrape = try TestConnection(port: port).exchange(get("/metrics"))
        XCTAssertTrue(scrape.response.hasPrefix("HTTP/1.1 200 OK"), scrape.response)
        XCTAssertLessThan(scrape.seconds, 1)
    }

    func testAClientThatSendsHalfARequestIsClosedAfterTheIdleTimeout() throws {
        let port = try startEndpoint(idleTimeout: .seconds(1))
        let slow = try TestConnection(port: port).send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        let scrape = try TestConnection(port: port).exchange(get("/metrics"))
        XCTAssertTrue(scrape.response.hasPrefix("HTTP/1.1 200 OK"), "a stalled client must not hold up a scrape")
        let closed = try slow.readUntilClosed(timeout: 5)
        XCTAssertTrue(closed.closed, "the half-sent request was still open after 5 s")
        XCTAssertEqual(closed.response, "", "nothing is answered to a request that never finished")
        XCTAssertGreaterThan(closed.seconds, 0.8)
    }

    func testScrapeIsPrometheusTextWithEveryMetricNameAndOtherPathsAreJSON() throws {
        let port = try startEndpoint()
        metrics.recordsIn.add(42, ordering: .relaxed)
        metrics.setLag("clicks-0", 3)
        let scrape = try TestConnection(port: port).exchange(get("/metrics")).response
        let (head, body) = try split(scrape)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK"), head)
        XCTAssertTrue(head.lowercased().contains("\r\ncontent-type: text/plain; version=0.0.4\r\n"), head)
        let names = try prometheusSampleNames(body)
        for name in ["eddy_records_in_total", "eddy_consumer_lag", "eddy_commit_failures_total", "eddy_transaction_timeouts_total",
                     "eddy_last_commit_timestamp_seconds", "eddy_redis_errors_total", "eddy_redis_outage",
                     "eddy_redis_outage_seconds_total", "eddy_dead_letters_total", "eddy_commits_total"] {
            XCTAssertTrue(names.contains(name), "\(name) missing from:\n\(body)")
        }
        XCTAssertTrue(body.contains("eddy_records_in_total{application=\"it\"} 42\n"), body)
        XCTAssertTrue(body.contains("eddy_consumer_lag{application=\"it\",partition=\"clicks-0\"} 3\n"), body)

        let health = try split(try TestConnection(port: port).exchange(get("/healthz")).response)
        XCTAssertTrue(health.head.hasPrefix("HTTP/1.1 200 OK"), health.head)
        XCTAssertEqual(health.body, #"{"status":"ok"}"#)
        let missing = try split(try TestConnection(port: port).exchange(get("/nothing")).response)
        XCTAssertTrue(missing.head.hasPrefix("HTTP/1.1 404 Not Found"), missing.head)
        XCTAssertTrue(missing.head.lowercased().contains("content-type: application/json"), missing.head)
        let json = try JSONSerialization.jsonObject(with: Data(missing.body.utf8)) as? [String: [String: String]]
        XCTAssertEqual(json?["error"]?["message"], "no route for GET /nothing")
    }

    func testStopClosesIdleAndHalfSentConnectionsAndReturnsPromptly() throws {
        let port = try startEndpoint()
        let open = try (0..<5).map { _ in try TestConnection(port: port) }
            + [try TestConnection(port: port).send("GET /metrics HTTP/1.1\r\n")]
        let started = Date()
        servers.removeLast().stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        for connection in open {
            XCTAssertTrue(try connection.readUntilClosed(timeout: 2).closed)
        }
        XCTAssertThrowsError(try TestConnection(port: port), "still accepting after stop()")
    }

    func testATakenPortIsOneClearErrorAndEddyRunExitsWithoutCrashing() throws {
        let holder = try HeldPort()
        XCTAssertThrowsError(try MetricsEndpoint.start(port: holder.port, logger: Logger(label: "metrics-test")) { "" }) { error in
            XCTAssertEqual("\(error)", "cannot listen on 127.0.0.1:\(holder.port): Address already in use")
        }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-metrics-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let topology = try userCountsTopology(application: "counts-port", topic: "clicks-port", in: dir)
        let config = dir.appendingPathComponent("config.yaml").path
        // The endpoint starts before any broker or Redis is contacted: none needs to exist.
        try """
            kafka: {bootstrap_servers: "127.0.0.1:1"}
            redis: {host: 127.0.0.1, port: 1}
            state: {dir: "\(dir.appendingPathComponent("state").path)"}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let running = try EddyCLI.start(["run", topology, "--config", config, "--metrics-port", "\(holder.port)"])
        let result = try running.wait(timeout: 30)
        XCTAssertEqual(running.process.terminationReason, .exit, "eddy crashed: \(result.stderr)")
        XCTAssertEqual(result.status, 1, result.stderr)
        let errors = result.stderr.split(separator: "\n").filter { $0.contains("cannot listen") }
        XCTAssertEqual(errors.count, 1, result.stderr)
        XCTAssertTrue(errors.first?.hasSuffix(
            "metrics endpoint cannot listen on 127.0.0.1:\(holder.port): Address already in use (choose another metrics.port or --metrics-port; 0 picks a free one)"
        ) ?? false, result.stderr)
    }

    private func get(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    }

    private func split(_ response: String) throws -> (head: String, body: String) {
        guard let end = response.range(of: "\r\n\r\n") else { throw ServiceError("no end of headers in: \(response)") }
        return (String(response[..<end.upperBound]), String(response[end.upperBound...]))
    }

    /// Checks the text exposition format line by line (HELP and TYPE once per name, before
    /// its samples; sample names, labels and values well formed) and returns the names.
    private func prometheusSampleNames(_ body: String) throws -> Set<String> {
        let help = /# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+/
        let type = /# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (?:counter|gauge)/
        let sample = /(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (?<value>\S+)/
        var helped = Set<String>(), typed = Set<String>(), sampled = Set<String>()
        XCTAssertTrue(body.hasSuffix("\n"), "the text format ends with a newline")
        for line in body.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if let match = line.wholeMatch(of: help) {
                XCTAssertTrue(helped.insert(String(match.1)).inserted, "second HELP: \(line)")
            } else if let match = line.wholeMatch(of: type) {
                XCTAssertTrue(typed.insert(String(match.1)).inserted, "second TYPE: \(line)")
            } else if let match = line.wholeMatch(of: sample) {
                XCTAssertTrue(typed.contains(String(match.name)), "sample before its TYPE: \(line)")
                XCTAssertNotNil(Double(String(match.value)), "not a number: \(line)")
                sampled.insert(String(match.name))
            } else {
                XCTFail("not Prometheus text: \(line)")
            }
        }
        XCTAssertEqual(helped, typed)
        return sampled
    }
}

/// One client connection to 127.0.0.1 with a raw socket, so a test can stall, half-send
/// and reset the way misbehaving clients do.
private final class TestConnection {
    private var fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard connectLoopback(fd, port: port) else {
            close(fd)
            throw ServiceError("cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    @discardableResult
    func send(_ text: String) throws -> TestConnection {
        let sent = text.withCString { write(fd, $0, strlen($0)) }
        guard sent == text.utf8.count else { throw ServiceError("write: \(String(cString: strerror(errno)))") }
        return self
    }

    /// Closes with SO_LINGER 0: the peer gets a TCP reset instead of an orderly close.
    func reset() {
        var noLinger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
        close(fd)
        fd = -1
    }

    /// Sends a request and reads the whole response (the request says Connection: close).
    func exchange(_ request: String, timeout: TimeInterval = 5) throws -> (response: String, seconds: Double) {
        let started = Date()
        try send(request)
        let read = try readUntilClosed(timeout: timeout)
        guard read.closed else { throw ServiceError("no complete response within \(timeout) s; got: \(read.response)") }
        return (read.response, Date().timeIntervalSince(started))
    }

    /// Reads until the server closes (or resets) the connection or `timeout` passes.
    func readUntilClosed(timeout: TimeInterval) throws -> (response: String, closed: Bool, seconds: Double) {
        let started = Date()
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let left = timeout - Date().timeIntervalSince(started)
            guard left > 0 else { return (String(decoding: response, as: UTF8.self), false, Date().timeIntervalSince(started)) }
            var limit = timeval(tv_sec: Int(left), tv_usec: Int((left - left.rounded(.down)) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let n = read(fd, &buffer, buffer.count)
            if n > 0 {
                response += buffer[0..<n]
            } else if n == 0 || errno == ECONNRESET {
                return (String(decoding: response, as: UTF8.self), true, Date().timeIntervalSince(started))
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                throw ServiceError("read: \(String(cString: strerror(errno)))")
            }
        }
    }
}
