import EddyRedis

/// Turns a commit's changes into Redis commands (absolute values only: HSET, ZADD with the
/// score, SET — never increments, so sending them again is harmless) and sends them in
/// MULTI/EXEC blocks over one pipelined connection.
struct RedisViewWriter {
    private(set) var commands: [RedisCommand] = []
    /// Commands per MULTI/EXEC block and round trip.
    var chunkSize = 4_096

    mutating func reset() { commands.removeAll(keepingCapacity: true) }

    /// Writes for every dirty group of `table`.
    mutating func addDirty(of table: AggregateTable) {
        guard !table.spec.sinks.isEmpty else { return }
        for e in table.dirty {
            let value: (OutputRef, inout [UInt8]) -> Void = { ref, out in
                switch ref {
                case .group(let i): table.groupValue(i, of: e, into: &out)
                case .count: out.append(contentsOf: String(table.counts[e]).utf8)
                case .sum(let j): out.append(contentsOf: formatNumber(table.sum(j, of: e)).utf8)
                case .field: break  // not reachable: aggregate sinks resolve to outputs only
                }
            }
            for sink in table.spec.sinks { add(sink, value) }
        }
    }

    private mutating func add(_ sink: CompiledSink, _ value: (OutputRef, inout [UInt8]) -> Void) {
        var key: [UInt8] = []
        sink.key.render(into: &key, value)
        func rendered(_ ref: OutputRef?) -> [UInt8] {
            var out: [UInt8] = []
            if let ref { value(ref, &out) }
            return out
        }
        switch sink.kind {
        case .hash:
            if let field = sink.field {
                var f: [UInt8] = []
                field.render(into: &f, value)
                commands.append(RedisCommand([Array("HSET".utf8), key, f, rendered(sink.value)]))
            } else {
                var args: [[UInt8]] = [Array("HSET".utf8), key]
                for (name, ref) in sink.outputs {
                    args.append(name)
                    args.append(rendered(ref))
                }
                commands.append(RedisCommand(args))
            }
        case .zset:
            var member: [UInt8] = []
            sink.field!.render(into: &member, value)
            commands.append(RedisCommand([Array("ZADD".utf8), key, rendered(sink.value), member]))
        case .string:
            var args: [[UInt8]] = [Array("SET".utf8), key, rendered(sink.value)]
            if let ttl = sink.ttlSeconds { args += [Array("EX".utf8), Array(String(ttl).utf8)] }
            commands.append(RedisCommand(args))
            return
        }
        if let ttl = sink.ttlSeconds {
            commands.append(RedisCommand([Array("EXPIRE".utf8), key, Array(String(ttl).utf8)]))
        }
    }

    /// Writes for the per-record sinks collected since the last commit.
    mutating func addPending(_ pending: PendingRedisWrites) {
        for (target, (value, ttl)) in pending.values {
            switch target.kind {
            case .hash: commands.append(RedisCommand([Array("HSET".utf8), target.key, target.field, value]))
            case .zset: commands.append(RedisCommand([Array("ZADD".utf8), target.key, value, target.field]))
            case .string:
                commands.append(RedisCommand([Array("SET".utf8), target.key, value] + (ttl.map { [Array("EX".utf8), Array(String($0).utf8)] } ?? [])))
                continue
            }
            if let ttl { commands.append(RedisCommand([Array("EXPIRE".utf8), target.key, Array(String(ttl).utf8)])) }
        }
    }

    /// Sends everything collected; throws on a connection failure that outlasts the
    /// connection's retries or on an error reply.
    func send(over redis: RedisConnection) throws {
        var start = 0
        while start < commands.count {
            let end = min(start + chunkSize, commands.count)
            let block = [RedisCommand(["MULTI"])] + commands[start..<end] + [RedisCommand(["EXEC"])]
            let replies = try redis.pipeline(block)
            if let error = replies.lazy.compactMap(\.firstError).first {
                throw RedisError("redis rejected a write: \(error)")
            }
            start = end
        }
    }
}

/// Numbers as Redis values: integral values without a fraction, others in Swift's shortest
/// round-trip form.
func formatNumber(_ d: Double) -> String {
    if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
    return "\(d)"
}
