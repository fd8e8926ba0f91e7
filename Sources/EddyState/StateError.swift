/// An error from RocksDB, carrying RocksDB's own message.
public struct StateError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Runs a RocksDB C call that reports failure through an `errptr`; throws its message.
func rocksCall<T>(_ context: @autoclosure () -> String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T) throws -> T {
    var err: UnsafeMutablePointer<CChar>?
    let result = body(&err)
    if let err {
        let message = String(cString: err)
        free(err)
        throw StateError("\(context()): \(message)")
    }
    return result
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
