import EddyRedis
import Foundation
import XCTest

/// Topologies/item-popularity.yaml against real services: each user's recent items and the
/// decayed popularity per item (re-keyed through a repartition topic), over two runs with
/// the state directory lost in between (the second restores both stores from their
/// changelogs), compared with a reference computed from the generated input.
final class RecentAndDecayIntegrationTests: XCTestCase {
    func testRecentItemsAndDecayedPopularityMatchTheReferenceAcrossARestore() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-popularity"
        let config = try services.writeRuntimeConfig(name: "popularity", commitIntervalMs: 200, threads: 2)
        let topology = try userCountsTopology(application: "popularity-test", topic: topic, in: services.workDir, file: "item-popularity")
        var files: [String] = []
        for (chunk, seed) in [(0, 11), (1, 12)] {
            let file = services.workDir.appendingPathComponent("popularity-\(chunk).jsonl").path
            let gen = try EddyCLI.run(["generate", "--events", "40000", "--users", "600", "--items", "3000", "--seed", "\(seed)",
                                       "--topic", topic, "--partitions", "3", "--out", file, "--config", config])
            XCTAssertEqual(gen.status, 0, gen.stderr)
            files.append(file)
            if chunk == 1 {
                try FileManager.default.removeItem(at: services.workDir.appendingPathComponent("state-popularity"))
            }
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            if chunk == 1 { XCTAssertTrue(run.stderr.contains("restored"), String(run.stderr.suffix(3000))) }
        }

        // Reference. The second chunk's event times overlap the first's, so recent items are
        // ordered by event time, ties in arrival order (a stable sort of the input order).
        let halfLife = 3_600_000.0
        let weights = ["view": 1.0, "click": 3.0, "cart": 5.0, "purchase": 10.0]
        var recent: [String: [(time: Int64, item: String)]] = [:]
        var contributions: [String: [(w: Double, t: Double)]] = [:]
        for file in files {
            for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
                let e = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let item = e["item_id"] as! String
                let t = (e["ts"] as! NSNumber).doubleValue
                recent[e["user_id"] as! String, default: []].append((Int64(t), item))
                guard let w = weights[e["event_type"] as! String] else { continue }
                contributions[item, default: []].append((w, t))
            }
        }
        // Σ w·2^((t − latest)/h) over an item's events, but those in a frame of 32 half-lives
        // two or more before the latest event's (README, `decay`: dropped, under 2^-32 of
        // their weight; the input spans days, so some are). Frames as Eddy numbers them:
        // ⌊t · (1 / (32 h))⌋.
        let frame = { (t: Double) in (t * (1 / (32 * halfLife))).rounded(.down) }
        var popularity: [String: (score: Double, last: Double)] = [:]
        for (item, list) in contributions {
            let last = list.map(\.t).max()!
            let kept = list.filter { frame($0.t) >= frame(last) - 1 }
            popularity[item] = (kept.reduce(0.0) { $0 + $1.w * exp2(($1.t - last) / halfLife) }, last)
        }

        let redis = try services.redis()
        for (user, events) in recent {
            let ordered = events.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element.item)
            let expected = "[" + ordered.suffix(20).reversed().map { "\"\($0)\"" }.joined(separator: ",") + "]"
            XCTAssertEqual(try redis.send("GET", "user:\(user):recent").string, expected, user)
        }
        XCTAssertEqual(try redis.send("ZCARD", "items:popular"), .integer(Int64(popularity.count)))
        let ranked = try redis.send("ZRANGE", "items:popular", "0", "-1", "WITHSCORES").strings
        var checked = 0
        for i in stride(from: 0, to: ranked.count - 1, by: 2) {
            guard let p = popularity[ranked[i]], let rank = Double(ranked[i + 1]) else { return XCTFail("unexpected member \(ranked[i])") }
            // The reference adds floats, rounding at every step (Eddy's frame sums are
            // exact): the same value up to that rounding.
            XCTAssertEqual(rank, log2(p.score) + p.last / halfLife, accuracy: 1e-9, ranked[i])
            checked += 1
        }
        XCTAssertEqual(checked, popularity.count)
        XCTAssertGreaterThan(recent.values.filter { $0.count > 20 }.count, 0, "no user had more than 20 events: the limit was not exercised")
    }
}
