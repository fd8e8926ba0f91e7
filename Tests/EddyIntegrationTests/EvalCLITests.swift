import EddyTestSupport
import Foundation
import XCTest

/// `eddy eval` on a generated log: its trials and the popularity baseline's hit rates equal
/// a brute-force replay written here — the same split by event time, the same held-out
/// events (interactions with an item new to the user), and the top 20 by count so far (a
/// rank on a 100-year half-life: log2 of the count, ties to the later item), ranked by the
/// rules of `Recommender` (a user with a recent list: the 100 most counted
/// without the list's items; without one: the 20 most counted).
final class EvalCLITests: XCTestCase {
    func testTrialsAndThePopularityBaselineMatchABruteForceReplay() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-eval-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("events.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "6000", "--users", "900", "--items", "300", "--seed", "9", "--out", file])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let topology = LocalServices.packageRoot.appendingPathComponent("Topologies/recs.yaml").path
        let eval = try EddyCLI.run(["eval", "--events", file, "--topology", topology, "--json"], timeout: 300)
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [[String: Any]])
        func row(_ method: String, _ users: String) throws -> [String: Any] {
            try XCTUnwrap(rows.first { $0["method"] as? String == method && $0["users"] as? String == users })
        }

        let decoder = JSONDecoder()
        let events = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
            .map { try decoder.decode(RecsReference.Event.self, from: Data($0.utf8)) }
            .enumerated().sorted { ($0.element.ts, $0.offset) < ($1.element.ts, $1.offset) }.map(\.element)
        let interactions: Set<String> = ["view", "click", "cart", "purchase"]
        let split = Int(Double(events.count) * 0.9)
        // seen: every item of the user's events (what makes an event held out); recent:
        // their interactions' items (their recent list: excluded, and empty for a cold start).
        var counts: [String: [RecsReference.Contribution]] = [:], seen: [String: Set<String>] = [:], recent: [String: Set<String>] = [:]
        var warmUsers = Set<String>()
        var trials = ["warm": 0, "cold": 0], hits10 = ["warm": 0, "cold": 0], hits20 = ["warm": 0, "cold": 0]
        for (i, e) in events.enumerated() {
            if i >= split, interactions.contains(e.event_type), seen[e.user_id]?.contains(e.item_id) != true {
                let group = warmUsers.contains(e.user_id) ? "warm" : "cold"
                // As ZREVRANGE: the highest rank first, ties by item id descending.
                let byCount = counts.mapValues { RecsReference.rank($0, halfLifeMs: 36_525 * 86_400_000) }
                    .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }
                // The recent list holds the last 50 distinct items: all of a user's, here.
                let mine = recent[e.user_id] ?? []
                let pool = mine.isEmpty ? Array(byCount.prefix(20)) : byCount.prefix(100).filter { !mine.contains($0.key) }
                let top = pool.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(20).map(\.key)
                trials[group]! += 1
                if let p = top.firstIndex(of: e.item_id) {
                    hits20[group]! += 1
                    if p < 10 { hits10[group]! += 1 }
                }
            }
            if i < split { warmUsers.insert(e.user_id) }
            if interactions.contains(e.event_type) {
                counts[e.item_id, default: []].append((1, e.ts))
                recent[e.user_id, default: []].insert(e.item_id)
            }
            seen[e.user_id, default: []].insert(e.item_id)
        }
        XCTAssertGreaterThan(trials["warm"]!, 50)
        XCTAssertGreaterThan(trials["cold"]!, 20)
        for group in ["warm", "cold"] {
            let got = try row("popularity (count)", group)
            XCTAssertEqual(got["trials"] as? Int, trials[group], group)
            XCTAssertEqual(got["hr10"] as? Double ?? -1, Double(hits10[group]!) / Double(trials[group]!), accuracy: 1e-12, group)
            XCTAssertEqual(got["hr20"] as? Double ?? -1, Double(hits20[group]!) / Double(trials[group]!), accuracy: 1e-12, group)
            for method in ["popularity (decayed)", "trending", "co-view (raw)", "co-view (cosine)", "online model (incremental ALS)", "blend"] {
                let r = try row(method, group)
                XCTAssertEqual(r["trials"] as? Int, trials[group], method)
                XCTAssertTrue((0...1).contains(r["hr20"] as? Double ?? -1), method)
            }
        }
    }
}
