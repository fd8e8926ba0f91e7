import EddyKafka
import EddyRedis
import Foundation
import XCTest

/// A real Tansu broker and a real redis-server on free loopback ports, started for a test
/// class and stopped (by PID) afterwards. Needs `scripts/setup` to have run.
final class LocalServices {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let brokerPort: Int
    let redisPort: Int
    let workDir: URL
    private var processes: [Process] = []

    init() throws {
        workDir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-it-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        brokerPort = try Self.freePort()
        redisPort = try Self.freePort()
        let tansu = Self.packageRoot.appendingPathComponent("tools/tansu/bin/tansu").path
        guard FileManager.default.isExecutableFile(atPath: tansu) else {
            throw ServiceError("Tansu is not installed at \(tansu): run scripts/setup")
        }
        try start(tansu, ["broker", "--listener-url", "tcp://127.0.0.1:\(brokerPort)",
                          "--advertised-listener-url", "tcp://127.0.0.1:\(brokerPort)",
                          "--storage-engine", "memory://tansu/"], log: "tansu.log", port: brokerPort)
        try start("/usr/bin/redis-server", ["--bind", "127.0.0.1", "--port", "\(redisPort)", "--save", "",
                                            "--appendonly", "no"], log: "redis.log", port: redisPort)
    }

    func stop() {
        for p in processes where p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        processes = []
        try? FileManager.default.removeItem(at: workDir)
    }

    deinit { stop() }

    var bootstrap: String { "127.0.0.1:\(brokerPort)" }
    var kafkaConfig: KafkaConfig { KafkaConfig(["bootstrap.servers": bootstrap]) }

    func redis() throws -> RedisConnection { try RedisConnection(host: "127.0.0.1", port: redisPort) }

    /// A runtime config file for these services with its own state directory.
    /// `redisPort` nil: this Redis.
    func writeRuntimeConfig(name: String, commitIntervalMs: Int = 500, threads: Int = 1, staticMembership: Bool = false,
                            guarantee: String = "exactly_once", instanceId: String? = nil, redisPort: Int? = nil) throws -> String {
        let path = workDir.appendingPathComponent("\(name).yaml").path
        let text = """
            kafka: {bootstrap_servers: "\(bootstrap)", session_timeout_ms: 6000, static_membership: \(staticMembership)}
            redis: {host: 127.0.0.1, port: \(redisPort ?? self.redisPort)}
            state: {dir: "\(workDir.appendingPathComponent("state-\(name)").path)", memory_mb: 64}
            runtime: {threads: \(threads), commit_interval_ms: \(commitIntervalMs)\(instanceId.map { ", instance_id: \($0)" } ?? "")}
            processing: {guarantee: \(guarantee)}
            metrics: {port: 0, log_interval_s: 2}
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func start(_ executable: String, _ arguments: [String], log: String, port: Int) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let logURL = workDir.appendingPathComponent(log)
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        processes.append(p)
        for _ in 0..<100 {
            if Self.canConnect(port) { return }
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
    private let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = loopbackAddress(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else {
            close(fd)
            throw ServiceError("no free port")
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
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    return String(decoding: response, as: UTF8.self)
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
