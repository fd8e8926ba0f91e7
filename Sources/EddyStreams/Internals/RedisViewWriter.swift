import EddyRedis

/// Turns a commit's changes into Redis commands (absolute values only: HSET, ZADD with the
/// score, SET, list replacements and deletes — never increments, so sending them again is
/// harmless) and sends each task's
/// commands through a fencing script, pipelined over one connection.
///
/// The fence: each task has a watermark in Redis, `eddy:{application}:wm:{topic}-{partition}`,
/// holding the input offset its view was last written at. A script applies a block of
/// commands only when the block's offset is not behind the watermark and, with the task's
/// last block of the commit, raises the watermark — atomically. (A large commit is several
/// blocks; a write cut off after the first must not raise it, or a restore would take
/// Redis for complete and never write the rest.) So Redis only moves forward in input position: a restarted or
/// migrated task replaying older records (or a zombie that lost its partition) cannot put
/// older values back, and because processing is deterministic the values it would have
/// written are the ones already there.
///
/// A missing watermark means Redis does not hold the task's whole state: the task is new,
/// or Redis lost the application's keys (restarted without its data, flushed, evicted). A
/// block is still applied then, and reported (the script returns 2), but only the last
/// block of a write of the task's *whole* state creates the watermark (returns 3). So the
/// evidence of a loss stays in Redis until the whole state is back, whatever crashes or
/// restarts come between, and a task that finds its watermark missing, at open or in a
/// commit, writes its whole state.
struct RedisViewWriter {
    /// Commands of the task being collected.
    private(set) var commands: [RedisCommand] = []
    /// Fenced blocks ready to send: the task's watermark key, its offset, its commands.
    private var blocks: [Block] = []
    /// `last`: the task's last block of this commit (only it raises the watermark, so a
    /// write cut off between blocks leaves the watermark where a restore sees the rest as
    /// missing); `completes`: also the last block of a write of the task's whole state (it
    /// may create the watermark).
    private typealias Block = (watermark: [UInt8], offset: Int64, last: Bool, completes: Bool, commands: ArraySlice<RedisCommand>)
    private(set) var commandCount = 0
    /// The expiry each key of the task's commands so far was given: one EXPIRE per key and
    /// commit is enough (each zset member or hash field written with a `ttl` sink asked for
    /// its own: on Topologies/coview.yaml half the Redis commands), unless the key was
    /// deleted or lost members since (an emptied zset or hash is gone, and the next write
    /// makes a new key without expiry).
    private var expiries: [[UInt8]: Int] = [:]
    /// Commands per script call.
    var chunkSize = 4_096

    static let fenceScript = """
        local stored = redis.call('HGET', KEYS[1], 'offset')
        local offset = tonumber(ARGV[1])
        if stored and tonumber(stored) > offset then return 0 end
        local i = 3
        while i <= #ARGV do
          local n = tonumber(ARGV[i])
          redis.call(unpack(ARGV, i + 1, i + n))
          i = i + n + 1
        end
        if ARGV[2] == '0' then
          if stored then return 1 end
          return 2
        end
        if stored then
          redis.call('HSET', KEYS[1], 'offset', ARGV[1])
          return 1
        end
        if ARGV[2] == '2' then
          redis.call('HSET', KEYS[1], 'offset', ARGV[1])
          return 3
        end
        return 2
        """

    static func watermarkKey(application: String, partition: String) -> [UInt8] {
        Array("eddy:\(application):wm:\(partition)".utf8)
    }

    mutating func reset() {
        commands.removeAll(keepingCapacity: true)
        expiries.removeAll(keepingCapacity: true)
        blocks.removeAll(keepingCapacity: true)
        commandCount = 0
    }

    /// Closes the commands collected since the last call into fenced blocks for one task;
    /// `wholeState`: they are the task's whole state.
    mutating func fence(watermark: [UInt8], offset: Int64, wholeState: Bool = false) {
        let all = commands
        commands.removeAll(keepingCapacity: true)
        expiries.removeAll(keepingCapacity: true)
        commandCount += all.count
        var start = 0
        repeat {
            let end = min(start + chunkSize, all.count)
            blocks.append((watermark, offset, end == all.count, wholeState && end == all.count, all[start..<end]))
            start = end
        } while start < all.count
    }

    /// The fenced blocks in send order, for a test driver's Redis model.
    var fencedBlocks: [(watermark: [UInt8], offset: Int64, commands: ArraySlice<RedisCommand>)] {
        blocks.map { ($0.watermark, $0.offset, $0.commands) }
    }

    /// What Redis answered to a send: blocks the fence refused, and the watermarks that
    /// were missing and still are, with the offset of a block that found so (it was applied).
    struct Outcome {
        var refused = 0
        var missingWatermarks: [[UInt8]: Int64] = [:]
    }

    /// Sends every fenced block in one pipeline. `scriptSHA` is the fencing script's id on
    /// `redis`: the caller keeps it from one send to the next (nil: it is loaded now).
    func send(over redis: RedisConnection, scriptSHA: inout String?) throws -> Outcome {
        guard !blocks.isEmpty else { return Outcome() }
        let sha = try scriptSHA ?? load(redis, into: &scriptSHA)
        var replies = try redis.pipeline(blocks.map { script(sha, $0) })
        if replies.contains(where: { $0.firstError?.hasPrefix("NOSCRIPT") == true }) {
            let reloaded = try load(redis, into: &scriptSHA)  // Redis restarted and forgot the script
            replies = try redis.pipeline(blocks.map { script(reloaded, $0) })
        }
        if let error = replies.lazy.compactMap(\.firstError).first {
            throw RedisError("redis rejected a write: \(error)")
        }
        var outcome = Outcome()
        var created = Set<[UInt8]>()
        for (block, reply) in zip(blocks, replies) {
            switch reply {
            case .integer(0): outcome.refused += 1
            case .integer(2): outcome.missingWatermarks[block.watermark] = block.offset
            case .integer(3): created.insert(block.watermark)
            default: break
            }
        }
        for watermark in created { outcome.missingWatermarks[watermark] = nil }
        return outcome
    }

    private func load(_ redis: RedisConnection, into scriptSHA: inout String?) throws -> String {
        let reply = try redis.send("SCRIPT", "LOAD", Self.fenceScript)
        guard let sha = reply.string, reply.firstError == nil else { throw RedisError("cannot load the fencing script: \(reply)") }
        scriptSHA = sha
        return sha
    }

    private func script(_ sha: String, _ block: Block) -> RedisCommand {
        var args: [[UInt8]] = [Array("EVALSHA".utf8), Array(sha.utf8), Array("1".utf8), block.watermark, Array(String(block.offset).utf8),
                               Array((block.completes ? "2" : block.last ? "1" : "0").utf8)]
        args.reserveCapacity(6 + block.commands.count * 5)
        for command in block.commands {
            args.append(Array(String(command.arguments.count).utf8))
            args.append(contentsOf: command.arguments)
        }
        return RedisCommand(args)
    }

    /// Deletes `key` (DEL).
    mutating func delete(_ key: [UInt8]) {
        expiries[key] = nil
        commands.append(RedisCommand([Array("DEL".utf8), key]))
    }

    /// Removes hash fields (HDEL).
    mutating func deleteFields(_ fields: [[UInt8]], of key: [UInt8]) {
        guard !fields.isEmpty else { return }
        expiries[key] = nil
        commands.append(RedisCommand([Array("HDEL".utf8), key] + fields))
    }

    /// Removes zset members (ZREM).
    mutating func removeMembers(_ members: [[UInt8]], of key: [UInt8]) {
        guard !members.isEmpty else { return }
        expiries[key] = nil
        commands.append(RedisCommand([Array("ZREM".utf8), key] + members))
    }

    /// Replaces the list at `key` with `values`, first to last (DEL, then RPUSH): absolute,
    /// as every view write is.
    mutating func setList(_ key: [UInt8], _ values: [[UInt8]], ttlSeconds: Int? = nil) {
        delete(key)
        guard !values.isEmpty else { return }
        commands.append(RedisCommand([Array("RPUSH".utf8), key] + values))
        if let ttlSeconds { expire(key, seconds: ttlSeconds) }
    }

    /// Sets a key's expiry (EXPIRE).
    mutating func expire(_ key: [UInt8], seconds: Int) {
        guard expiries.updateValue(seconds, forKey: key) != seconds else { return }
        commands.append(RedisCommand([Array("EXPIRE".utf8), key, Array(String(seconds).utf8)]))
    }

    /// The key a sink writes for one group: what a stateful node deletes, or lets expire,
    /// when the group leaves its state.
    func renderKey(of sink: CompiledSink, _ value: (OutputRef, inout [UInt8]) -> Void) -> [UInt8] {
        var key: [UInt8] = []
        sink.key.render(into: &key, value)
        return key
    }

    /// Removes what `sink` wrote for one group: its field or member of a shared key, or its key.
    mutating func remove(_ sink: CompiledSink, _ value: (OutputRef, inout [UInt8]) -> Void) {
        let key = renderKey(of: sink, value)
        if let field = sink.field {
            var member: [UInt8] = []
            field.render(into: &member, value)
            if sink.kind == .zset { removeMembers([member], of: key) } else { deleteFields([member], of: key) }
        } else {
            delete(key)
        }
    }

    /// The write of one sink for one group or record; `value` appends the text of each
    /// output the sink's templates name.
    mutating func add(_ sink: CompiledSink, _ value: (OutputRef, inout [UInt8]) -> Void) {
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
        case .list:
            preconditionFailure("a list sink is written by its recent node, with setList")
        case .string:
            var args: [[UInt8]] = [Array("SET".utf8), key, rendered(sink.value)]
            if let ttl = sink.ttlSeconds { args += [Array("EX".utf8), Array(String(ttl).utf8)] }
            commands.append(RedisCommand(args))
            return
        }
        if let ttl = sink.ttlSeconds { expire(key, seconds: ttl) }
    }

    /// Writes for the per-record sinks collected since the last commit.
    mutating func addPending(_ pending: PendingRedisWrites) {
        for (target, (value, ttl)) in pending.values {
            switch target.kind {
            case .hash: commands.append(RedisCommand([Array("HSET".utf8), target.key, target.field, value]))
            case .zset: commands.append(RedisCommand([Array("ZADD".utf8), target.key, value, target.field]))
            case .list: preconditionFailure("list sinks are not per-record sinks (the compiler allows them on recent nodes only)")
            case .string:
                commands.append(RedisCommand([Array("SET".utf8), target.key, value] + (ttl.map { [Array("EX".utf8), Array(String($0).utf8)] } ?? [])))
                continue
            }
            if let ttl { commands.append(RedisCommand([Array("EXPIRE".utf8), target.key, Array(String(ttl).utf8)])) }
        }
    }
}

/// Numbers as Redis values: integral values without a fraction, others in Swift's shortest
/// round-trip form.
func formatNumber(_ d: Double) -> String {
    if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
    return "\(d)"
}
