import EddyRedis

/// Redis as a `TopologyTestDriver` keeps it: keys, values and TTLs, changed by executing the
/// commands `RedisViewWriter` emits, through the same fence (a block behind its watermark is
/// refused). Any other command throws, so a command added to the writer cannot be ignored
/// here without notice.
struct TestRedisModel {
    private(set) var values: [String: TestRedisValue] = [:]
    private(set) var ttls: [String: Int] = [:]
    /// Watermark key → the input offset of the last block applied (the fence's hash field).
    private(set) var watermarks: [String: Int64] = [:]
    /// Blocks the fence refused.
    private(set) var refusedBlocks = 0

    mutating func apply(_ view: RedisViewWriter) throws {
        for block in view.fencedBlocks {
            let watermark = Self.text(block.watermark)
            if let stored = watermarks[watermark], stored > block.offset {
                refusedBlocks += 1
                continue
            }
            for command in block.commands { try execute(command.arguments) }
            watermarks[watermark] = block.offset
        }
    }

    private static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    private func wrongType(_ key: String, _ command: String) -> TopologyTestDriverError {
        TopologyTestDriverError("WRONGTYPE: \(command) on '\(key)', which holds \(values[key].map { "\($0)" } ?? "nothing")")
    }

    private mutating func remove(_ key: String) {
        values[key] = nil
        ttls[key] = nil
    }

    mutating func execute(_ arguments: [[UInt8]]) throws {
        let args = arguments.map(Self.text)
        guard let name = args.first?.uppercased() else { throw TopologyTestDriverError("empty Redis command") }
        func arity(_ ok: Bool) throws {
            if !ok { throw TopologyTestDriverError("wrong number of arguments for \(name): \(args)") }
        }
        switch name {
        case "HSET":
            try arity(args.count >= 4 && args.count % 2 == 0)
            let key = args[1]
            var hash: [String: String] = [:]
            switch values[key] {
            case nil: break
            case .hash(let h): hash = h
            default: throw wrongType(key, name)
            }
            for i in stride(from: 2, to: args.count, by: 2) { hash[args[i]] = args[i + 1] }
            values[key] = .hash(hash)
        case "ZADD":
            try arity(args.count >= 4 && args.count % 2 == 0)
            let key = args[1]
            var zset: [String: Double] = [:]
            switch values[key] {
            case nil: break
            case .zset(let z): zset = z
            default: throw wrongType(key, name)
            }
            for i in stride(from: 2, to: args.count, by: 2) {
                guard let score = Double(args[i]), !score.isNaN else { throw TopologyTestDriverError("ZADD '\(key)': score '\(args[i])' is not a float") }
                zset[args[i + 1]] = score
            }
            values[key] = .zset(zset)
        case "SET":
            try arity(args.count == 3 || (args.count == 5 && args[3].uppercased() == "EX"))
            values[args[1]] = .string(args[2])
            if args.count == 5 {
                guard let seconds = Int(args[4]), seconds > 0 else { throw TopologyTestDriverError("SET '\(args[1])': invalid expire time '\(args[4])'") }
                ttls[args[1]] = seconds
            } else {
                ttls[args[1]] = nil  // SET without EX clears the expiry
            }
        case "EXPIRE":
            try arity(args.count == 3)
            guard let seconds = Int(args[2]) else { throw TopologyTestDriverError("EXPIRE '\(args[1])': '\(args[2])' is not an integer") }
            guard values[args[1]] != nil else { return }  // no such key: Redis answers 0
            if seconds <= 0 { remove(args[1]) } else { ttls[args[1]] = seconds }
        case "DEL":
            try arity(args.count >= 2)
            for key in args[1...] { remove(key) }
        case "HDEL":
            try arity(args.count >= 3)
            let key = args[1]
            switch values[key] {
            case nil: return
            case .hash(var h):
                for field in args[2...] { h[field] = nil }
                if h.isEmpty { remove(key) } else { values[key] = .hash(h) }
            default: throw wrongType(key, name)
            }
        case "ZREM":
            try arity(args.count >= 3)
            let key = args[1]
            switch values[key] {
            case nil: return
            case .zset(var z):
                for member in args[2...] { z[member] = nil }
                if z.isEmpty { remove(key) } else { values[key] = .zset(z) }
            default: throw wrongType(key, name)
            }
        case "RPUSH":
            try arity(args.count >= 3)
            let key = args[1]
            switch values[key] {
            case nil: values[key] = .list(Array(args[2...]))
            case .list(let l): values[key] = .list(l + args[2...])
            default: throw wrongType(key, name)
            }
        default:
            throw TopologyTestDriverError("the test driver's Redis model does not know the command \(name) (\(args)): add it to TestRedisModel")
        }
    }
}
