import EddyKafka
import EddyRedis
import Foundation
import XCTest

/// A real Tansu broker and a real redis-server on free loopback ports, started for a test
/// class and stopped (by PID) afterwards. Needs `scripts/setup` to have run.
///
/// With `faultProxies`, both sit behind scripts/faults/tcp-proxy.py (the broker advertises
/// its proxy, so reconnecting clients come back through it) and Redis can be stopped,
/// restarted with or without its data and held at its memory limit: the faults of
/// FaultIntegrationTests.
final class LocalServices {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The broker port clients use: Tansu's own, or its proxy's.
    let brokerPort: Int
    /// redis-server's own port: tests check Redis here, past any proxy.
    let redisPort: Int
    /// The Redis port runtime configs name: `redisPort`, or its proxy's.
    let redisClientPort: Int
    let workDir: URL
    private(set) var brokerProxy: FaultProxy?
    private(set) var redisProxy: FaultProxy?
    private var processes: [Process] = []
    private var redisServer: Process?

    init(faultProxies: Bool = false) throws {
        workDir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-it-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        let tansuPort = try Self.freePort()
        brokerPort = faultProxies ? try Self.freePort() : tansuPort
        redisPort = try Self.freePort()
        redisClientPort = faultProxies ? try Self.freePort() : redisPort
        let tansu = Self.packageRoot.appendingPathComponent("tools/tansu/bin/tansu").path
        guard FileManager.default.isExecutableFile(atPath: tansu) else {
            throw ServiceError("Tansu is not installed at \(tansu): run scripts/setup")
        }
        try start(tansu, ["broker", "--listener-url", "tcp://127.0.0.1:\(tansuPort)",
                          "--advertised-listener-url", "tcp://127.0.0.1:\(brokerPort)",
                          "--storage-engine", "memory://tansu/"], log: "tansu.log", port: tansuPort)
        try startRedis()
        if faultProxies {
            brokerProxy = try startProxy(name: "broker", listen: brokerPort, target: tansuPort)
            redisProxy = try startProxy(name: "redis", listen: redisClientPort, target: redisPort)
        }
    }

    func stop() {
        for p in processes where p.isRunning {
            kill(p.processIdentifier, SIGCONT)  // a frozen Redis would not stop
            p.terminate()
            p.waitUntilExit()
        }
        processes = []
        // EDDY_KEEP_TEST_DIRS=1 keeps the services' logs (tansu.log…) to look into a failure.
        if ProcessInfo.processInfo.environment["EDDY_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(at: workDir)
        }
    }

    deinit { stop() }

    var bootstrap: String { "127.0.0.1:\(brokerPort)" }
    var kafkaConfig: KafkaConfig { KafkaConfig(["bootstrap.servers": bootstrap]) }

    func redis() throws -> RedisConnection { try RedisConnection(host: "127.0.0.1", port: redisPort) }

    /// The data set redis-server saves when stopped and loads when started: no snapshots
    /// while it runs (`--save ""`), one on SIGTERM, so a restart "with its data" has all of it.
    private var redisDump: URL { workDir.appendingPathComponent("redis.rdb") }

    private func startRedis() throws {
        redisServer = try start("/usr/bin/redis-server", [
            "--bind", "127.0.0.1", "--port", "\(redisPort)", "--save", "", "--appendonly", "no",
            "--dir", workDir.path, "--dbfilename", redisDump.lastPathComponent, "--shutdown-on-sigterm", "save",
        ], log: "redis.log", port: redisPort)
    }

    /// Stops redis-server (SIGTERM, by PID); its port refuses connections until `restartRedis`.
    func stopRedis() {
        guard let server = redisServer else { return }
        server.terminate()
        server.waitUntilExit()
        processes.removeAll { $0 === server }
        redisServer = nil
    }

    /// A Redis that stops answering without closing connections (SIGSTOP), and one that
    /// answers again (SIGCONT).
    func freezeRedis() { if let server = redisServer { kill(server.processIdentifier, SIGSTOP) } }
    func thawRedis() { if let server = redisServer { kill(server.processIdentifier, SIGCONT) } }

    /// Starts redis-server again on its port, with the data it saved when stopped, or empty
    /// (a replaced server, or one that never persisted).
    func restartRedis(withData: Bool) throws {
        if !withData, FileManager.default.fileExists(atPath: redisDump.path) {
            try FileManager.default.removeItem(at: redisDump)
        }
        try startRedis()
    }

    /// Redis at its memory limit: with `maxmemory` below what it already uses and no
    /// eviction, every command that may grow memory (HSET, EVALSHA of a writing script) is
    /// refused with an OOM error while reads and CONFIG still work.
    func limitRedisMemory() throws {
        let redis = try redis()
        _ = try redis.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
        _ = try redis.send("CONFIG", "SET", "maxmemory", "1")
    }

    func unlimitRedisMemory() throws {
        _ = try redis().send("CONFIG", "SET", "maxmemory", "0")
    }

    /// A runtime config file for these services with its own state directory.
    /// `redisPort` nil: this Redis.
    /// A shipped topology (`Topologies/NAME.yaml`) copied into the work directory with its
    /// source topic replaced by `topic`; returns the copy's path.
    func shippedTopology(_ name: String, topic: String) throws -> String {
        let path = workDir.appendingPathComponent("\(name)-topology.yaml").path
        let shipped = try String(contentsOf: Self.packageRoot.appendingPathComponent("Topologies/\(name).yaml"), encoding: .utf8)
        try shipped.replacingOccurrences(of: "topic: clicks\n", with: "topic: \(topic)\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Static members get longer sessions (`RuntimeConfig.staticSessionFloorMs` says why).
    func writeRuntimeConfig(name: String, commitIntervalMs: Int = 500, threads: Int = 1, staticMembership: Bool = false,
                            guarantee: String = "exactly_once", instanceId: String? = nil, redisPort: Int? = nil,
                            stopTimeoutMs: Int? = nil) throws -> String {
        let path = workDir.appendingPathComponent("\(name).yaml").path
        let text = """
            kafka: {bootstrap_servers: "\(bootstrap)", session_timeout_ms: \(staticMembership ? 20000 : 6000), static_membership: \(staticMembership)}
            redis: {host: 127.0.0.1, port: \(redisPort ?? redisClientPort)}
            state: {dir: "\(workDir.appendingPathComponent("state-\(name)").path)", memory_mb: 64}
            runtime: {threads: \(threads), commit_interval_ms: \(commitIntervalMs)\(instanceId.map { ", instance_id: \($0)" } ?? "")\(stopTimeoutMs.map { ", stop_timeout_ms: \($0)" } ?? "")}
            processing: {guarantee: \(guarantee)}
            metrics: {port: 0, log_interval_s: 2}
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func startProxy(name: String, listen: Int, target: Int) throws -> FaultProxy {
        let proxy = FaultProxy(port: listen, controlPort: try Self.freePort())
        try start("/usr/bin/python3", [Self.packageRoot.appendingPathComponent("scripts/faults/tcp-proxy.py").path,
                                       "--listen", "127.0.0.1:\(listen)", "--target", "127.0.0.1:\(target)",
                                       "--control", "127.0.0.1:\(proxy.controlPort)"],
                  log: "proxy-\(name).log", port: proxy.controlPort)
        return proxy
    }

    /// Starts a service, its output appended to `log` in the work directory (a restarted
    /// service keeps its earlier lines), and waits until it accepts connections on `port`.
    @discardableResult
    private func start(_ executable: String, _ arguments: [String], log: String, port: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let logURL = workDir.appendingPathComponent(log)
        if !FileManager.default.fileExists(atPath: logURL.path) {
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: logURL)
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        processes.append(p)
        for _ in 0..<100 {
            if Self.canConnect(port) { return p }
            usleep(100_000)
        }
        throw ServiceError("\(executable) did not open port \(port); log: \((try? String(contentsOf: logURL, encoding: .utf8)) ?? "")")
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        return connectLoopback(fd, port: port)
    }

    static func freePort() throws -> Int { try HeldPort().port }
}

/// A loopback port bound and listening (accepting nobody) until this is released: a port
/// that is free once it goes, or taken while it lives.
final class HeldPort {
    /// The listening socket (a `SilentServer` accepts on it).
    let fd: Int32
    let port: Int

    init(backlog: Int32 = 1) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = loopbackAddress(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, backlog) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else {
            close(fd)
            throw ServiceError("no free port: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }
}

struct ServiceError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// GET http://127.0.0.1:port/path with a raw socket; returns the whole response.
func httpGet(port: Int, path: String) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    guard connectLoopback(fd, port: port) else { return nil }
    let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    _ = request.withCString { write(fd, $0, strlen($0)) }
    return String(decoding: readToEnd(fd), as: UTF8.self)
}

/// Everything the peer sends until it closes (or a read fails or times out).
func readToEnd(_ fd: Int32) -> [UInt8] {
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    return response
}

/// Connects, sends `request` if any, and closes with a reset (SO_LINGER 0) without waiting
/// for an answer, as a port check or a scraper that gives up does. The server's next read
/// then fails with ECONNRESET, and its answer meets a reset connection (EPIPE); a request
/// still being read when the reset arrives gets its answer refused with ECONNRESET instead.
func resetConnection(port: Int, after request: String? = nil) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    guard connectLoopback(fd, port: port) else { return }
    if let request { _ = request.withCString { write(fd, $0, strlen($0)) } }
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
}

func loopbackAddress(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    return addr
}

func connectLoopback(_ fd: Int32, port: Int) -> Bool {
    var addr = loopbackAddress(port: port)
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}
