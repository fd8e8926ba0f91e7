import EddyRedis
import Foundation

/// The expected Redis state of Topologies/user-counts.yaml (and, with `items`, of
/// user-and-item-counts.yaml), computed independently of Eddy: Foundation's
/// JSONSerialization over the generated JSONL, plain dictionaries.
struct UserCountsReference {
    var count: [String: Int] = [:]
    /// Exact sums, rounded once (as Eddy's are: `ExactDoubleSum`).
    private(set) var sumPrice: [String: Double] = [:]
    var byType: [String: [String: Int]] = [:]
    /// Per item: events, and weighted events (view 1, click 3, cart 5, purchase 10).
    var itemCount: [String: Int] = [:]
    var itemWeight: [String: Int] = [:]
    /// Whether Redis should hold the per-item keys too.
    var items = false
    static let weights = ["view": 1, "click": 3, "cart": 5, "purchase": 10]

    init(jsonl path: String) throws {
        try self.init(jsonl: [path])
    }

    init(jsonl paths: [String]) throws {
        let text = try paths.map { try String(contentsOfFile: $0, encoding: .utf8) }.joined()
        var prices: [String: ExactDoubleSum] = [:]
        for line in text.split(separator: "\n") {
            let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let user = event["user_id"] as! String
            let type = event["event_type"] as! String
            count[user, default: 0] += 1
            byType[user, default: [:]][type, default: 0] += 1
            let item = event["item_id"] as! String
            itemCount[item, default: 0] += 1
            itemWeight[item, default: 0] += Self.weights[type]!
            if let price = event["price"] as? Double { prices[user, default: ExactDoubleSum()].add(price) }
        }
        sumPrice = prices.mapValues(\.value)
    }

    var totalEvents: Int { count.values.reduce(0, +) }

    /// Every difference between Redis and the reference (empty when exact), at most `limit`.
    func differences(in redis: RedisConnection, limit: Int = 20) throws -> [String] {
        var diffs: [String] = []
        let users = count.keys.sorted()
        for chunk in stride(from: 0, to: users.count, by: 500).map({ Array(users[$0..<min($0 + 500, users.count)]) }) {
            let commands = chunk.flatMap { u in
                [RedisCommand(["HGETALL", "user:\(u):counts"]), RedisCommand(["HGETALL", "user:\(u):by_type"])]
            }
            let replies = try redis.pipeline(commands)
            for (i, user) in chunk.enumerated() {
                let counts = Self.hash(replies[2 * i])
                let types = Self.hash(replies[2 * i + 1])
                if counts["count"].flatMap(Int.init) != count[user] {
                    diffs.append("user:\(user):counts count \(counts["count"] ?? "nil") != \(count[user]!)")
                }
                let expectedSum = sumPrice[user] ?? 0
                let sum = counts["sum_price"].flatMap(Double.init)
                if sum != expectedSum {
                    diffs.append("user:\(user):counts sum_price \(counts["sum_price"] ?? "nil") != \(expectedSum)")
                }
                let expectedTypes = byType[user]!.mapValues(String.init)
                if types != expectedTypes {
                    diffs.append("user:\(user):by_type \(types) != \(expectedTypes)")
                }
                if diffs.count >= limit { return diffs }
            }
        }
        let userKeys = try Self.keyCount(redis, pattern: "user:*")
        if userKeys != 2 * users.count {
            diffs.append("Redis holds \(userKeys) user keys, expected \(2 * users.count)")
        }
        if items {
            let ranking = Self.hash(try redis.send("ZRANGE", "items:by_weight", "0", "-1", "WITHSCORES"))
            if ranking != itemWeight.mapValues(String.init) {
                diffs.append("items:by_weight holds \(ranking.count) items, differing from the reference in \(itemWeight.filter { ranking[$0.key] != String($0.value) }.count)")
            }
            let itemKeys = try Self.keyCount(redis, pattern: "item:*")
            if itemKeys != itemCount.count {
                diffs.append("Redis holds \(itemKeys) item keys, expected \(itemCount.count)")
            }
        }
        return diffs
    }

    /// Event counts missing from Redis (lost) or in excess (duplicated), summed over all
    /// users' `count` and per-type fields.
    func compare(with redis: RedisConnection) throws -> (keysChecked: Int, lost: Int, duplicated: Int) {
        var lost = 0, duplicated = 0
        func tally(_ actual: Int, _ expected: Int) {
            if actual < expected { lost += expected - actual } else { duplicated += actual - expected }
        }
        let users = count.keys.sorted()
        for chunk in stride(from: 0, to: users.count, by: 500).map({ Array(users[$0..<min($0 + 500, users.count)]) }) {
            let replies = try redis.pipeline(chunk.flatMap { u in
                [RedisCommand(["HGET", "user:\(u):counts", "count"]), RedisCommand(["HGETALL", "user:\(u):by_type"])]
            })
            for (i, user) in chunk.enumerated() {
                tally(replies[2 * i].string.flatMap(Int.init) ?? 0, count[user]!)
                let types = Self.hash(replies[2 * i + 1])
                for (type, n) in byType[user]! { tally(types[type].flatMap(Int.init) ?? 0, n) }
            }
        }
        guard items else { return (2 * users.count, lost, duplicated) }
        // Per item: events counted and weight, each against the reference.
        let itemIDs = itemCount.keys.sorted()
        for chunk in stride(from: 0, to: itemIDs.count, by: 500).map({ Array(itemIDs[$0..<min($0 + 500, itemIDs.count)]) }) {
            let replies = try redis.pipeline(chunk.map { RedisCommand(["HGETALL", "item:\($0):counts"]) })
            for (item, reply) in zip(chunk, replies) {
                let counts = Self.hash(reply)
                tally(counts["count"].flatMap(Int.init) ?? 0, itemCount[item]!)
                tally(counts["weighted_count"].flatMap(Int.init) ?? 0, itemWeight[item]!)
            }
        }
        return (2 * users.count + itemIDs.count, lost, duplicated)
    }

    /// How many keys match `pattern`; an error reply throws (a check must not pass because
    /// Redis refused to answer it).
    static func keyCount(_ redis: RedisConnection, pattern: String) throws -> Int {
        let reply = try redis.send("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", pattern)
        guard case .integer(let n) = reply else { throw ServiceError("counting keys \(pattern): Redis answered \(reply)") }
        return Int(n)
    }

    static func hash(_ reply: RedisReply) -> [String: String] {
        let items = reply.strings
        return Dictionary(uniqueKeysWithValues: stride(from: 0, to: items.count - 1, by: 2).map { (items[$0], items[$0 + 1]) })
    }
}

/// Topologies/user-counts.yaml with its own application id and topic, so tests sharing a
/// broker do not share a consumer group.
func userCountsTopology(application: String, topic: String, in dir: URL, file: String = "user-counts") throws -> String {
    let original = try String(contentsOf: LocalServices.packageRoot.appendingPathComponent("Topologies/\(file).yaml"), encoding: .utf8)
    let text = original
        .replacingOccurrences(of: "application: \(file)", with: "application: \(application)")
        .replacingOccurrences(of: "topic: clicks", with: "topic: \(topic)")
    precondition(text != original)
    let path = dir.appendingPathComponent("\(application).yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// Decodes the `--json` summary `eddy run` prints.
func runSummary(_ stdout: String) throws -> [String: Any] {
    guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
        throw ServiceError("no JSON summary in: \(stdout)")
    }
    return try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
}
