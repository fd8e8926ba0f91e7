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
            Self.scoredMembers(try check(reply))
        }
    }

    /// A `ZREVRANGE … WITHSCORES` reply's members (those with a numeric score).
    public static func scoredMembers(_ reply: RedisReply) -> [ScoredMember] {
        let flat = reply.strings
        return stride(from: 0, to: flat.count - 1, by: 2).compactMap { i in Double(flat[i + 1]).map { ScoredMember(flat[i], $0) } }
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

    public func string(_ key: String) throws -> String? {
        try check(redis.send("GET", key)).string
    }

    /// SCAN for the keys, then MGET in chunks of 1000: a pass over the catalog, for a
    /// caller to keep (it is not a per-request read for a large catalog).
    public func itemFactors(prefix: String) throws -> ItemFactors {
        var keys: [String] = []
        var cursor = "0"
        // The prefix's glob characters stand for themselves.
        let pattern = prefix.map { "*?[]\\".contains($0) ? "\\\($0)" : String($0) }.joined() + "*"
        repeat {
            let reply = try check(redis.send("SCAN", cursor, "MATCH", pattern, "COUNT", "1000"))
            guard case .array(let parts) = reply, parts.count == 2 else { throw RedisError("redis: unexpected SCAN reply") }
            cursor = parts[0].string ?? "0"
            keys += parts[1].strings
        } while cursor != "0"
        keys = Array(Set(keys)).sorted()
        var factors = ItemFactors()
        for start in stride(from: 0, to: keys.count, by: 1_000) {
            let chunk = Array(keys[start..<min(start + 1_000, keys.count)])
            guard case .array(let values) = try check(redis.send(RedisCommand(["MGET"] + chunk))), values.count == chunk.count else {
                throw RedisError("redis: MGET did not answer one value per key")
            }
            for (key, value) in zip(chunk, values) {
                if let text = value.string, let vector = ItemFactors.parse(text) { factors.append(String(key.dropFirst(prefix.count)), vector) }
            }
        }
        return factors
    }

    private func check(_ reply: RedisReply) throws -> RedisReply {
        if let error = reply.firstError { throw RedisError("redis: \(error)") }
        return reply
    }
}
