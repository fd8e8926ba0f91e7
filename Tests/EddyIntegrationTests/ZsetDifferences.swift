import EddyRedis
import Foundation

extension Dictionary {
    func mapKeys<K: Hashable>(_ transform: (Key) -> K) -> [K: Value] { Dictionary<K, Value>(uniqueKeysWithValues: map { (transform($0.key), $0.value) }) }
}

/// The zsets matching `pattern` in Redis against `expected` (key → member → score): what
/// differs, at most 20 lines (empty when equal). Scores are compared to 1e-9 relative:
/// decayed sums combined per commit round differently from one sum.
func zsetDifferences(_ redis: RedisConnection, pattern: String, expected: [String: [String: Double]]) throws -> [String] {
    var out: [String] = []
    guard case .array(let keys) = try redis.send("KEYS", pattern) else { return ["KEYS failed"] }
    let actualKeys = Set(keys.compactMap(\.string))
    if actualKeys != Set(expected.keys) {
        out.append("\(pattern): \(actualKeys.count) keys, expected \(expected.count); differing \(actualKeys.symmetricDifference(expected.keys).sorted().prefix(5))")
    }
    for (key, members) in expected.sorted(by: { $0.key < $1.key }) where actualKeys.contains(key) {
        let flat = try redis.send("ZRANGE", key, "0", "-1", "WITHSCORES").strings
        var got: [String: Double] = [:]
        for i in stride(from: 0, to: flat.count - 1, by: 2) { got[flat[i]] = Double(flat[i + 1]) }
        if Set(got.keys) != Set(members.keys) {
            out.append("\(key): \(got.count) members, expected \(members.count); differing \(Set(got.keys).symmetricDifference(members.keys).sorted().prefix(5))")
            continue
        }
        for (member, want) in members where abs(got[member]! - want) > 1e-9 * Swift.max(1, abs(want)) {
            out.append("\(key) \(member): \(got[member]!), expected \(want)")
        }
    }
    return Array(out.prefix(20))
}
