import EddyKafka
import EddyRedis
import Foundation
import XCTest

/// `Topologies/coview.yaml` against the real broker and Redis: generated clicks (in event-time
/// order, keyed by user), two stream threads, pairs re-keyed by item through the repartition
/// topic, two runs with more input between them, then a replay from the earliest offsets. Every `co_view:{item}` zset and
/// `co_view:totals` equals a brute-force reference computed here from the generated file:
/// every user's events in order, every pair listed, every decayed count in closed form.
final class CoViewIntegrationTests: XCTestCase {
    private static let halfLifeMs = 7 * 86_400_000.0
    private static let weights = ["view": 1.0, "click": 2.0, "cart": 4.0, "purchase": 8.0]

    func testTheCoViewMatrixMatchesAllPairsAcrossRunsAndAReplay() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let topology = services.workDir.appendingPathComponent("coview-topology.yaml").path
        let shipped = try String(contentsOf: LocalServices.packageRoot.appendingPathComponent("Topologies/coview.yaml"), encoding: .utf8)
        try shipped.replacingOccurrences(of: "topic: clicks\n", with: "topic: clicks-coview\n")
            .write(toFile: topology, atomically: true, encoding: .utf8)
        let config = try services.writeRuntimeConfig(name: "coview", commitIntervalMs: 200, threads: 2)
        let redis = try services.redis()
        // One generated stream, in event-time order as a live one is, produced in two halves.
        let file = services.workDir.appendingPathComponent("coview.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "30000", "--users", "300", "--items", "400", "--seed", "71", "--out", file])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        try KafkaAdmin(config: services.kafkaConfig).createTopic("clicks-coview", partitions: 4)
        let producer = try KafkaProducer(config: services.kafkaConfig)
        var sent: [String] = []
        for half in [lines[..<15_000], lines[15_000...]] {
            for line in half {
                let user = try JSONDecoder().decode(Event.self, from: Data(line.utf8)).user_id
                try producer.send(topic: "clicks-coview", key: Array(user.utf8), value: Array(line.utf8))
            }
            try producer.flush()
            sent += half
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
            XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))
            XCTAssertEqual(try differences(redis, lines: sent), [])
        }
        let reset = try EddyCLI.run(["reset", topology, "--config", config, "--to-earliest"])
        XCTAssertEqual(reset.status, 0, reset.stderr)
        _ = try redis.send("FLUSHALL")
        let replay = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(replay.status, 0, String(replay.stderr.suffix(3000)))
        XCTAssertEqual(try differences(redis, lines: sent), [])
    }

    private struct Event: Decodable {
        let user_id: String, item_id: String, event_type: String, ts: Int64
    }

    /// Redis against the reference, as a list of what differs (empty when equal).
    private func differences(_ redis: RedisConnection, lines: [String]) throws -> [String] {
        // The rules of Topology.Pairs, written out: each user's last 20 distinct items.
        var kept: [String: [(item: String, time: Int64)]] = [:]
        var pairs: [String: [String: [(w: Double, t: Int64)]]] = [:]
        var totals: [String: [(w: Double, t: Int64)]] = [:]
        let decoder = JSONDecoder()
        do {
            for line in lines {
                let e = try decoder.decode(Event.self, from: Data(line.utf8))
                guard let w = Self.weights[e.event_type] else { continue }
                totals[e.item_id, default: []].append((w, e.ts))
                var items = kept[e.user_id] ?? []
                for other in items where other.item != e.item_id && abs(e.ts - other.time) <= 1_800_000 {
                    pairs[e.item_id, default: [:]][other.item, default: []].append((w, e.ts))
                    pairs[other.item, default: [:]][e.item_id, default: []].append((w, e.ts))
                }
                var time = e.ts
                if let i = items.firstIndex(where: { $0.item == e.item_id }) { time = max(time, items.remove(at: i).time) }
                items.insert((e.item_id, time), at: 0)
                kept[e.user_id] = Array(items.prefix(20))
            }
        }
        func rank(_ contributions: [(w: Double, t: Int64)]) -> Double {
            let last = contributions.map(\.t).max()!
            return log2(contributions.reduce(0.0) { $0 + $1.w * exp2(-Double(last - $1.t) / Self.halfLifeMs) }) + Double(last) / Self.halfLifeMs
        }
        var out: [String] = []
        func compare(_ key: String, _ expected: [String: Double]) throws {
            let got = try zset(redis, key)
            if Set(got.keys) != Set(expected.keys) {
                out.append("\(key): \(got.count) members, expected \(expected.count); differing \(Array(Set(got.keys).symmetricDifference(expected.keys).sorted().prefix(5)))")
                return
            }
            for (member, want) in expected where abs(got[member]! - want) > 1e-9 * abs(want) {
                out.append("\(key) \(member): \(got[member]!), expected \(want)")
            }
        }
        XCTAssertGreaterThan(pairs.values.reduce(0) { $0 + $1.count }, 5_000, "the data pairs many items")
        for (item, others) in pairs { try compare("co_view:\(item)", others.mapValues(rank)) }
        try compare("co_view:totals", totals.mapValues(rank))
        // No co_view key of an item that never paired.
        guard case .array(let keys) = try redis.send("KEYS", "co_view:*") else { return out + ["KEYS failed"] }
        let extra = Set(keys.compactMap(\.string)).subtracting(pairs.keys.map { "co_view:\($0)" } + ["co_view:totals"])
        if !extra.isEmpty { out.append("unexpected keys \(extra.sorted().prefix(5))") }
        return Array(out.prefix(20))
    }

    private func zset(_ redis: RedisConnection, _ key: String) throws -> [String: Double] {
        guard case .array(let flat) = try redis.send("ZRANGE", key, "0", "-1", "WITHSCORES") else { return [:] }
        let strings = flat.compactMap(\.string)
        var out: [String: Double] = [:]
        for i in stride(from: 0, to: strings.count - 1, by: 2) { out[strings[i]] = Double(strings[i + 1]) }
        return out
    }
}
