import EddyKafka
import EddyRecs
import EddyRedis
import EddyTestSupport
import Foundation
import XCTest

/// `Topologies/recs.yaml` against the real broker and Redis: every key family it writes
/// equals a brute-force reference (`RecsExpectedState`) — recent items, popularity,
/// trending, popularity per category, users' categories, co-view and its totals, cart
/// versions — and `eddy recommend` answers from
/// that state: k items, none the user has seen, best first, each co-view reason naming
/// one of the user's items that has the item as a neighbour; a cold user gets the most
/// popular items of the category asked for.
final class RecsIntegrationTests: XCTestCase {
    func testEveryKeyFamilyMatchesTheReferenceAndRecommendationsComeFromIt() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let topology = try services.shippedTopology("recs", topic: "clicks-recs")
        let config = try services.writeRuntimeConfig(name: "recs", commitIntervalMs: 200, threads: 2)
        let file = services.workDir.appendingPathComponent("recs.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "25000", "--users", "400", "--items", "500", "--categories", "8",
                                   "--seed", "5", "--topic", "clicks-recs", "--partitions", "4", "--out", file, "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
        XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))

        let decoder = JSONDecoder()
        let all = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map { try decoder.decode(RecsReference.Event.self, from: Data($0.utf8)) }
        let expected = RecsExpectedState(all, partitions: 4)
        let redis = try services.redis()

        // user:recent:{user} (the last 50 distinct items, newest first), popularity (1 h),
        // trending (against 1 d), popularity per category, users' categories, co-view (7 d)
        // and its totals, cart versions.
        XCTAssertEqual(try expected.differences(in: redis, limit: 20), [])
        let recent = expected.recent, coView = expected.coView
        guard case .integer(let ttl) = try redis.send("TTL", "user:recent:\(recent.keys.sorted()[0])") else { return XCTFail("no TTL") }
        XCTAssertTrue((86_000...86_400).contains(ttl), "TTL \(ttl)")
        // Sessions: one features hash per session still open or closed less than 1 h ago.
        guard case .array(let sessionKeys) = try redis.send("KEYS", "session:*:features") else { return XCTFail("KEYS") }
        XCTAssertGreaterThan(sessionKeys.count, 100)

        // eddy recommend, for users with history, and a cold one.
        for user in recent.keys.sorted().prefix(15) {
            let result = try EddyCLI.run(["recommend", "--user", user, "-k", "10", "--config", config])
            XCTAssertEqual(result.status, 0, result.stderr)
            let recs = try decoder.decode([Recommendation].self, from: Data(result.stdout.utf8))
            XCTAssertEqual(recs.count, 10, user)
            XCTAssertTrue(recs.allSatisfy { !recent[user]!.contains($0.item) }, "\(user): a seen item was recommended")
            XCTAssertEqual(recs.map(\.score), recs.map(\.score).sorted(by: >), user)
            for r in recs where r.reason.hasPrefix("co-viewed with ") {
                let seed = String(r.reason.dropFirst("co-viewed with ".count))
                XCTAssertTrue(recent[user]!.contains(seed), "\(user): \(r.reason) names an item the user has not seen")
                XCTAssertNotNil(coView["co_view:\(seed)"]?[r.item], "\(user): \(r.item) is no neighbour of \(seed)")
            }
        }
        let category = expected.categoryPopularity.keys.sorted()[0]
        let cold = try EddyCLI.run(["recommend", "--user", "nobody", "-k", "3", "--category", category, "--config", config])
        XCTAssertEqual(cold.status, 0, cold.stderr)
        let best = expected.categoryPopularity[category]!.sorted { $0.value > $1.value }.prefix(3).map(\.key)
        XCTAssertEqual(try decoder.decode([Recommendation].self, from: Data(cold.stdout.utf8)).map(\.item), best)
        XCTAssertEqual(try decoder.decode([Recommendation].self, from: Data(cold.stdout.utf8)).map(\.reason), Array(repeating: "popular in \(category)", count: 3))
    }
}
