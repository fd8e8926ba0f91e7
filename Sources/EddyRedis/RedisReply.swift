import CHiredis

/// A decoded Redis reply (copied out of hiredis' reply object).
public enum RedisReply: Equatable, Sendable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case array([RedisReply])
    case null

    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .bulk(Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_ARRAY:
            self = .array((0..<r.elements).map { RedisReply(r.element[$0]!) })
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(r.integer))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        default:
            self = .null
        }
    }

    public var string: String? {
        switch self {
        case .bulk(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    public var strings: [String] {
        if case .array(let items) = self { return items.compactMap(\.string) }
        return []
    }

    /// The first error found in this reply or, for EXEC results, in its elements.
    public var firstError: String? {
        switch self {
        case .error(let e): return e
        case .array(let items): return items.lazy.compactMap(\.firstError).first
        default: return nil
        }
    }
}
