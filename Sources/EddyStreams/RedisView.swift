import EddyRedis

/// The Redis keys a topology writes, found by the glob patterns of its sinks' key templates
/// (`user:{user_id}:counts` → `user:*:counts`): for resetting and for comparing runs.
public struct RedisView {
    public let patterns: [String]

    public init(_ topology: Topology) {
        var patterns: [String] = []
        for node in topology.nodes {
            for sink in node.sinks {
                let pattern = Self.glob(sink.key)
                if !patterns.contains(pattern) { patterns.append(pattern) }
            }
        }
        self.patterns = patterns
    }

    /// Literal text escaped for Redis' glob matching; each `{field}` becomes `*`.
    static func glob(_ template: String) -> String {
        var out = ""
        var inField = false
        for c in template {
            if inField {
                if c == "}" { inField = false; out += "*" }
            } else if c == "{" {
                inField = true
            } else {
                if "*?[]\\".contains(c) { out += "\\" }
                out.append(c)
            }
        }
        return out
    }

    /// Every key matching the patterns, sorted.
    public func keys(in redis: RedisConnection) throws -> [String] {
        try Self.keys(matching: patterns, in: redis)
    }

    static func keys(matching patterns: [String], in redis: RedisConnection) throws -> [String] {
        var keys = Set<String>()
        for pattern in patterns {
            var cursor = "0"
            repeat {
                let reply = try redis.send("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
                guard case .array(let parts) = reply, parts.count == 2 else {
                    throw RedisError("unexpected SCAN reply: \(reply)")
                }
                cursor = parts[0].string ?? "0"
                keys.formUnion(parts[1].strings)
            } while cursor != "0"
        }
        return keys.sorted()
    }

    /// Deletes every key of the view and the application's fence watermarks (a replay
    /// starts from older positions, which the old watermarks would refuse); returns how
    /// many view keys there were.
    @discardableResult
    public func clear(in redis: RedisConnection, application: String) throws -> Int {
        let keys = try keys(in: redis)
        let watermarks = try Self.keys(matching: [Self.glob("eddy:\(application):wm:") + "*"], in: redis)
        try Self.unlink(keys + watermarks, in: redis)
        return keys.count
    }

    private static func unlink(_ keys: [String], in redis: RedisConnection) throws {
        for start in stride(from: 0, to: keys.count, by: 1_000) {
            let chunk = keys[start..<min(start + 1_000, keys.count)]
            _ = try redis.send(RedisCommand(["UNLINK"] + chunk))
        }
    }

    /// A canonical text dump (one line per key, members sorted, TTLs left out): two runs
    /// that computed the same state give the same dump, whatever order they wrote in.
    public func dump(from redis: RedisConnection) throws -> [String] {
        let keys = try keys(in: redis)
        var lines: [String] = []
        lines.reserveCapacity(keys.count)
        for start in stride(from: 0, to: keys.count, by: 500) {
            let chunk = Array(keys[start..<min(start + 500, keys.count)])
            let types = try redis.pipeline(chunk.map { RedisCommand(["TYPE", $0]) })
            let reads = zip(chunk, types).map { key, type -> RedisCommand in
                switch type.string {
                case "hash": return RedisCommand(["HGETALL", key])
                case "zset": return RedisCommand(["ZRANGE", key, "0", "-1", "WITHSCORES"])
                case "list": return RedisCommand(["LRANGE", key, "0", "-1"])
                case "set": return RedisCommand(["SMEMBERS", key])
                default: return RedisCommand(["GET", key])
                }
            }
            let values = try redis.pipeline(reads)
            for ((key, type), value) in zip(zip(chunk, types), values) {
                let kind = type.string ?? "?"
                let items = value.strings
                let content: String
                switch kind {
                case "hash", "zset":
                    content = stride(from: 0, to: items.count - 1, by: 2).map { "\(items[$0])=\(items[$0 + 1])" }.sorted().joined(separator: " ")
                case "set": content = items.sorted().joined(separator: " ")
                case "list": content = items.joined(separator: " ")
                default: content = value.string ?? ""
                }
                lines.append("\(key) \(kind) \(content)")
            }
        }
        return lines
    }
}
