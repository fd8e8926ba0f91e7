import EddyRedis

/// `RecsState` over a Redis connection: one round trip per call — a pipeline for several
/// zsets, ZMSCORE (Redis 6.2 or later) for many scores: a recommendation reads a few
/// hundred scores, and one ZSCORE each made a request take 7 ms (Benchmarks/query).
/// Not thread-safe: one per thread, as `RedisConnection`.
public final class RedisRecsState: RecsState {
    private let redis: RedisConnection

    public init(_ redis: RedisConnection) { self.redis = redis }

    public func list(_ key: String) throws -> [String] {
        try check(redis.send("LRANGE", key, "0", "-1")).strings
    }

    public func top(_ key: String, limit: Int) throws -> [ScoredMember] {
        try tops([key], limit: limit)[0]
    }

    public func tops(_ keys: [String], limit: Int) throws -> [[ScoredMember]] {
        guard limit > 0 else { return keys.map { _ in [] } }
        return try redis.pipeline(keys.map { RedisCommand(["ZREVRANGE", $0, "0", String(limit - 1), "WITHSCORES"]) }).map { reply in
            let flat = try check(reply).strings
            return stride(from: 0, to: flat.count - 1, by: 2).compactMap { i in Double(flat[i + 1]).map { ScoredMember(flat[i], $0) } }
        }
    }

    public func scores(_ key: String, members: [String]) throws -> [Double?] {
        guard !members.isEmpty else { return [] }
        guard case .array(let values) = try check(redis.send(RedisCommand(["ZMSCORE", key] + members))), values.count == members.count else {
            throw RedisError("redis: ZMSCORE did not answer one score per member")
        }
        return values.map { $0.string.flatMap(Double.init) }
    }

    public func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] {
        guard !keys.isEmpty else { return [] }
        return try redis.pipeline(keys.map { RedisCommand(["HMGET", $0] + names) }).map { reply in
            guard case .array(let values) = try check(reply) else { return names.map { _ in nil } }
            return names.indices.map { $0 < values.count ? values[$0].string : nil }
        }
    }

    private func check(_ reply: RedisReply) throws -> RedisReply {
        if let error = reply.firstError { throw RedisError("redis: \(error)") }
        return reply
    }
}
