import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 server for `/metrics` on a dedicated thread (blocking accept; one
/// short response per connection). Scrapes are rare, so nothing fancier is warranted, and
/// it keeps the runtime free of an HTTP framework.
public final class MetricsServer: @unchecked Sendable {
    private let socketFD: Int32
    public let port: Int
    private let render: @Sendable () -> String

    /// Binds 127.0.0.1:`port` (0 picks a free port); throws with the OS message on failure.
    public init(host: String = "127.0.0.1", port: Int, render: @escaping @Sendable () -> String) throws {
        self.render = render
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MetricsServerError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError("metrics server cannot listen on \(host):\(port): \(message)")
        }
        var actual = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        socketFD = fd
        let thread = Thread { [self] in serve() }
        thread.name = "eddy-metrics"
        thread.start()
    }

    private func serve() {
        while true {
            let client = accept(socketFD, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // socket closed
            }
            var request = [UInt8](repeating: 0, count: 4096)
            let n = read(client, &request, request.count)
            let line = String(decoding: request.prefix(max(n, 0)), as: UTF8.self).split(separator: "\r\n").first ?? ""
            let (status, body) = line.hasPrefix("GET /metrics") ? ("200 OK", render()) : ("404 Not Found", "only /metrics is served here\n")
            let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = response.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
    }

    public func stop() {
        shutdown(socketFD, Int32(SHUT_RDWR))
        close(socketFD)
    }
}

public struct MetricsServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
