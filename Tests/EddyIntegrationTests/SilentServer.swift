import Foundation

/// A TCP server on a free loopback port that accepts connections and never answers: what a
/// hung Redis looks like to a client (connect succeeds, every reply waits forever).
final class SilentServer {
    let port: Int
    private let listener: Int32
    private var accepted: [Int32] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = loopbackAddress(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else {
            close(fd)
            throw ServiceError("silent server: \(String(cString: strerror(errno)))")
        }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Waits up to `timeout` for a client and accepts it (kept open, never written to).
    func acceptClient(timeout: TimeInterval) -> Bool {
        var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) == 1 else { return false }
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else { return false }
        accepted.append(fd)
        return true
    }

    func stop() {
        accepted.forEach { close($0) }
        accepted = []
        close(listener)
    }
}
