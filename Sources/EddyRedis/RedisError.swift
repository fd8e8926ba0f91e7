/// A Redis failure: a connection problem (hiredis' message) or an error reply from the server.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let isConnectionError: Bool
    public init(_ message: String, isConnectionError: Bool = false) {
        self.message = message
        self.isConnectionError = isConnectionError
    }
    public var description: String { message }
}
