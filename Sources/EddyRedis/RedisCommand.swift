/// One Redis command as raw argument bytes, ready for `redisAppendCommandArgv`.
public struct RedisCommand: Sendable {
    public var arguments: [[UInt8]]

    public init(_ arguments: [[UInt8]]) { self.arguments = arguments }
    public init(_ arguments: [String]) { self.arguments = arguments.map { Array($0.utf8) } }
}
