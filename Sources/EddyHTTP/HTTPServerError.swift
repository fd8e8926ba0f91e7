import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an HTTP server did not start, in one line an operator can act on.
public enum HTTPServerError: Error, CustomStringConvertible {
    case cannotListen(host: String, port: Int, reason: (any Error)?)

    public var description: String {
        switch self {
        case .cannotListen(let host, let port, let reason):
            return "cannot listen on \(host):\(port): \(reason.map(Self.explain) ?? "the server stopped before it bound")"
        }
    }

    /// NIO's IOError names the syscall and errno ("bind(descriptor:ptr:bytes:): Address
    /// already in use (errno: 98)"); the OS message alone is what the operator needs.
    private static func explain(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}
