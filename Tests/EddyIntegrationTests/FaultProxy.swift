import Foundation

/// The control side of a running scripts/faults/tcp-proxy.py (LocalServices starts and
/// stops the process): one command line per change, answered "ok …".
struct FaultProxy {
    enum Mode: String {
        /// Forward both ways.
        case pass
        /// Reset every open connection and each new one.
        case drop
        /// Accept and read, never answer.
        case blackhole
    }

    /// Where clients connect.
    let port: Int
    let controlPort: Int

    /// Switches to `mode` until the next call (the script's timed form, `drop 10`, is for
    /// shells; tests end a fault themselves).
    func set(_ mode: Mode) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        guard connectLoopback(fd, port: controlPort) else { throw ServiceError("fault proxy control port \(controlPort) refuses connections") }
        let command = "\(mode.rawValue)\n"
        _ = command.withCString { write(fd, $0, strlen($0)) }
        var reply: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { reply.append(byte) }
        let text = String(decoding: reply, as: UTF8.self)
        guard text.hasPrefix("ok") else { throw ServiceError("fault proxy: \(command) answered \(text)") }
    }
}
