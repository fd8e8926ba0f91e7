import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking hiredis connection owned by one thread. Every call has a deadline: connect,
/// read and write time out after `timeoutMs` (a Redis that accepts and never answers is an
/// error, not a hang). On a connection failure it reconnects once and sends the failed
/// pipeline again (a Redis restart leaves a dead socket behind): callers send only
/// idempotent writes (absolute values, fenced scripts), so a resend is safe. Longer
/// outages are the caller's to ride out (`CommitTail` retries with back-off and says so).
public final class RedisConnection {
    public let host: String
    public let port: Int
    public var maxAttempts = 2
    private let timeout: timeval
    private let credentials: RedisCredentials?
    private var context: UnsafeMutablePointer<redisContext>?

    /// `credentials`: sent with AUTH on every (re)connection.
    public init(host: String, port: Int, timeoutMs: Int = 5_000, credentials: RedisCredentials? = nil) throws {
        self.host = host
        self.port = port
        timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        self.credentials = credentials
        try connect()
    }

    deinit { if let context { redisFree(context) } }

    private func connect() throws {
        if let context { redisFree(context) }
        context = nil
        guard let ctx = redisConnectWithTimeout(host, Int32(port), timeout) else {
            throw RedisError("redis \(host):\(port): cannot allocate a connection", isConnectionError: true)
        }
        if ctx.pointee.err != 0 {
            let message = Self.errorText(ctx)
            redisFree(ctx)
            throw RedisError("redis \(host):\(port): \(message)", isConnectionError: true)
        }
        guard redisSetTimeout(ctx, timeout) == REDIS_OK else {
            let message = Self.errorText(ctx)
            redisFree(ctx)
            throw RedisError("redis \(host):\(port): cannot set the read/write timeout: \(message)", isConnectionError: true)
        }
        context = ctx
        if let credentials {
            // The reply names no secret; neither does the error.
            let who = credentials.user.map { " as '\($0)'" } ?? ""
            if let refused = try pipelineOnce([credentials.authCommand])[0].firstError {
                redisFree(ctx)
                context = nil
                throw RedisError("redis \(host):\(port): AUTH\(who) refused: \(refused)")
            }
        }
    }

    private static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Sends one command and returns its reply (error replies are returned, not thrown).
    public func send(_ command: RedisCommand) throws -> RedisReply {
        try pipeline([command])[0]
    }

    public func send(_ arguments: String...) throws -> RedisReply {
        try send(RedisCommand(arguments))
    }

    /// Sends all commands in one round trip and returns their replies in order.
    public func pipeline(_ commands: [RedisCommand]) throws -> [RedisReply] {
        var attempt = 0
        while true {
            do {
                return try pipelineOnce(commands)
            } catch let error as RedisError where error.isConnectionError && attempt + 1 < maxAttempts {
                attempt += 1
                try? connect()
            }
        }
    }

    private func pipelineOnce(_ commands: [RedisCommand]) throws -> [RedisReply] {
        guard let ctx = context else {
            try connect()
            return try pipelineOnce(commands)
        }
        for command in commands {
            let rc = Self.append(ctx, command)
            if rc != REDIS_OK { throw connectionLost(ctx) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else { throw connectionLost(ctx) }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(RedisReply(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    private func connectionLost(_ ctx: UnsafeMutablePointer<redisContext>) -> RedisError {
        // hiredis reports a read or write time-out as the socket's EAGAIN.
        let timedOut = ctx.pointee.err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
        let message = timedOut ? "no answer within \(timeout.tv_sec * 1000 + timeout.tv_usec / 1000) ms" : Self.errorText(ctx)
        redisFree(ctx)
        context = nil
        return RedisError("redis \(host):\(port): \(message)", isConnectionError: true)
    }

    private static func append(_ ctx: UnsafeMutablePointer<redisContext>, _ command: RedisCommand) -> Int32 {
        // Lay the arguments out in one buffer so one pointer pins them all (hiredis copies them).
        let args = command.arguments
        let lengths = args.map(\.count)
        var flat: [UInt8] = []
        flat.reserveCapacity(lengths.reduce(1, +))
        for arg in args { flat.append(contentsOf: arg) }
        return flat.withUnsafeBufferPointer { buf in
            let base = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(args.count)
            var offset = 0
            for length in lengths {
                pointers.append(base + offset)
                offset += length
            }
            return redisAppendCommandArgv(ctx, Int32(args.count), &pointers, lengths)
        }
    }
}

/// An ACL user (nil: the default user) and its password, for AUTH. The password never
/// appears in a description, a log line or an error.
public struct RedisCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let user: String?
    let password: String

    public init(user: String?, password: String) {
        self.user = user
        self.password = password
    }

    var authCommand: RedisCommand { RedisCommand(["AUTH"] + (user.map { [$0] } ?? []) + [password]) }

    public var description: String { "user \(user ?? "default"), password ••••" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["user": user as Any, "password": "••••"]) }
}
