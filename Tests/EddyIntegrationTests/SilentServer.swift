import Foundation

/// A TCP server on a free loopback port that accepts connections and never answers: what a
/// hung Redis looks like to a client (connect succeeds, every reply waits forever).
final class SilentServer {
    private var listener: HeldPort?
    let port: Int
    private var accepted: [Int32] = []

    init() throws {
        let held = try HeldPort(backlog: 16)
        listener = held
        port = held.port
    }

    /// Waits up to `timeout` for a client and accepts it (kept open, never written to).
    func acceptClient(timeout: TimeInterval) -> Bool {
        guard let listener else { return false }
        var pfd = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) == 1 else { return false }
        let fd = accept(listener.fd, nil, nil)
        guard fd >= 0 else { return false }
        accepted.append(fd)
        return true
    }

    func stop() {
        accepted.forEach { close($0) }
        accepted = []
        listener = nil
    }
}
