import EddyConfig
import EddyRedis
import Foundation
import XCTest

/// Bad config at the command line: each mistake is one line on stderr naming the file, line
/// and field (or the address), with exit status 64 for a config file and 1 for a start-up
/// failure; never the usage text, never a crash.
final class ConfigErrorsCLITests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-config-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The lines eddy printed on stderr, without info logs and librdkafka's own logs
    /// (`%3|…|FAIL|…` for each failed connection attempt).
    private func errorLines(_ result: EddyCLI.Result) -> [String] {
        result.stderr.split(separator: "\n").map(String.init).filter { !$0.contains(" info eddy") && !$0.hasPrefix("%") }
    }

    private func assertOneLine(_ result: EddyCLI.Result, status: Int32, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, status, result.stderr, file: file, line: line)
        let lines = errorLines(result)
        XCTAssertEqual(lines.count, 1, result.stderr, file: file, line: line)
        for part in expected { XCTAssertTrue(result.stderr.contains(part), "no '\(part)' in: \(result.stderr)", file: file, line: line) }
        XCTAssertFalse(result.stderr.contains("Usage:"), result.stderr, file: file, line: line)
    }

    private static let header = "application: a\nsource: {topic: t, key: user_id, timestamp: ts}\nnodes:\n"

    func testTopologyErrorsAreOneLineWithFileLineFieldAndExit64() throws {
        let cases: [(String, String, [String])] = [
            ("ttl.yaml", Self.header + "  - name: n\n    aggregate: {group_by: [user_id]}\n    to_redis: {type: hash, key: \"u:{user_id}\", ttl: 9999999999999999d}\n",
             [":6:", "field 'nodes[0].to_redis.ttl'", "100 years"]),
            ("half-life.yaml", Self.header + "  - name: n\n    decay: {group_by: [item_id], half_life: 9223372036854776s, weights: {field: e, values: {v: 1}}}\n",
             [":5:", "field 'nodes[0].decay.half_life'", "100 years"]),
            ("group-key.yaml", Self.header + "  - name: n\n    aggregate: {group_by: [user_id, event_type]}\n    to_redis: {type: hash, key: \"u:{user_id}:by_type\"}\n",
             [":6:", "field 'nodes[0].to_redis[0].key'", "names no {event_type}"]),
            ("no-nodes.yaml", "application: a\nsource: {topic: t, key: user_id, timestamp: ts}\nnodes: []\n",
             [":3:", "field 'nodes'", "lists no nodes"]),
        ]
        for (name, yaml, expected) in cases {
            let path = try write(name, yaml)
            for arguments in [["validate", path], ["run", path, "--config", "configs/local.yaml"]] {
                assertOneLine(try EddyCLI.run(arguments), status: 64, ["Error: \(path):"] + expected)
            }
        }
    }

    func testRuntimeConfigErrorsAreOneLineWithFileLineFieldAndExit64() throws {
        let cases: [(String, [String])] = [
            ("kafka:\n  bootstrap_servers: ''\n", [":2:3:", "field 'kafka.bootstrap_servers': must not be empty"]),
            ("state:\n  dir:\n", [":2:3:", "field 'state.dir': must not be empty"]),
            ("state:\n  memory_mb: 9000000000000\n", [":2:3:", "field 'state.memory_mb': must be at most 1048576"]),
        ]
        for (i, (yaml, expected)) in cases.enumerated() {
            let config = try write("config-\(i).yaml", yaml)
            assertOneLine(try EddyCLI.run(["run", "Topologies/user-counts.yaml", "--config", config]), status: 64, ["Error: \(config):"] + expected)
        }
        let missing = dir.appendingPathComponent("missing.yaml").path
        assertOneLine(try EddyCLI.run(["validate", missing]), status: 64, ["Error: \(missing): cannot read the file: No such file or directory"])
    }

    func testRealUsageErrorsStillShowTheUsage() throws {
        let result = try EddyCLI.run(["validate", "--no-such-flag", "Topologies/user-counts.yaml"])
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.stderr.contains("Usage: eddy validate"), result.stderr)
        let threads = try EddyCLI.run(["run", "Topologies/user-counts.yaml", "--threads", "0"])
        XCTAssertEqual(threads.status, 64)
        XCTAssertTrue(threads.stderr.contains("--threads must be 1 to 256, got 0"), threads.stderr)
    }

    func testAnUnreachableBrokerIsNamedWithItsAddressAndField() throws {
        let port = try LocalServices.freePort()  // nothing listens there
        let config = try write("config.yaml", "kafka: {bootstrap_servers: \"127.0.0.1:\(port)\"}\nstate: {dir: \"\(dir.path)/state\"}\nmetrics: {port: off}\n")
        let result = try EddyCLI.run(["run", "Topologies/user-counts.yaml", "--config", config], timeout: 120)
        assertOneLine(result, status: 1, ["the broker at 127.0.0.1:\(port) (kafka.bootstrap_servers) did not answer"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("state").path), "state opened before the broker answered")
    }

    /// Both need a broker and Redis that answer, since those are checked first.
    func testABusyMetricsPortAndAnUnusableStateDirFailCleanly() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topology = try userCountsTopology(application: "config-errors", topic: "clicks-config-errors", in: services.workDir)
        let config = try services.writeRuntimeConfig(name: "config-errors-runtime")
        let gen = try EddyCLI.run(["generate", "--events", "10", "--topic", "clicks-config-errors", "--partitions", "1", "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)

        // A port held by another socket: reported, then a clean exit (it used to segfault or
        // abort in RocksDB's teardown in 3 tries of 4).
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = loopbackAddress(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, len) == 0 && listen(holder, 1) == 0 && getsockname(holder, $0, &len) == 0 }
        }
        XCTAssertTrue(bound)
        let busy = Int(UInt16(bigEndian: addr.sin_port))
        for _ in 0..<4 {
            let result = try EddyCLI.run(["run", topology, "--config", config, "--metrics-port", "\(busy)"], timeout: 120)
            assertOneLine(result, status: 1, ["127.0.0.1:\(busy)", "metrics.port", "Address already in use"])
        }
        // The port is bound before RocksDB opens (the old order opened the state first).
        let stateDir = services.workDir.appendingPathComponent("state-config-errors-runtime")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stateDir.path), "state opened before the metrics port was bound")

        // A state directory that is a file: the field, the path and the OS reason.
        let file = try write("not-a-directory", "")
        let result = try EddyCLI.run(["run", topology, "--config", config, "--state-dir", file], timeout: 120)
        assertOneLine(result, status: 1, ["state.dir '\(file)': cannot create \(file)/config-errors: Not a directory"])
        XCTAssertFalse(result.stderr.contains("NSError") || result.stderr.contains("Domain="), result.stderr)
    }

    /// The longest TTL a topology accepts must be one Redis accepts (the reference: a real
    /// redis-server), for both commands the view writer sends; one past Redis's own limit
    /// is rejected, so the check could fail.
    func testTheLongestTTLIsOneRedisAccepts() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let redis = try services.redis()
        let ttl = String(ConfigLimits.maxDurationSeconds)
        XCTAssertNil(try redis.send("SET", "ttl-probe", "v", "EX", ttl).firstError)
        XCTAssertNil(try redis.send("EXPIRE", "ttl-probe", ttl).firstError)
        XCTAssertNotNil(try redis.send("EXPIRE", "ttl-probe", String(Int64.max / 1000)).firstError)
    }
}
