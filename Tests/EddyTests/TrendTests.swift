import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// `decay` with `trend_against`: the short and the long decayed sums per group, and
/// `trend` = rank − long_rank, in the topology test driver (re-keyed by item, so partials
/// merge), against both sums computed in closed form from the events.
final class TrendTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000
    private static let hour = 3_600_000.0, day = 86_400_000.0

    private let text = """
        application: trending
        source: {topic: clicks, key: user_id, timestamp: ts}
        nodes:
          - name: trending
            decay:
              group_by: [item_id]
              half_life: 1h
              trend_against: 1d
              weights: {field: event_type, values: {view: 1, purchase: 10}}
            to_redis:
              - {type: zset, key: "item:trending", member: "{item_id}", score: trend}
              - {type: hash, key: "item:{item_id}:decay"}
        """

    func testTheTrendIsTheShortSumAgainstTheLongOneInClosedForm() throws {
        let driver = try TopologyTestDriver(try TopologyFile.parse(text, file: "trending.yaml"), partitions: 3)
        var random = TestRandom(seed: 3)
        var events: [(user: String, item: String, type: String, ts: Int64)] = []
        // Two days of steady traffic on i0…i19; in the last two hours i7 gets a burst.
        for i in 0..<6000 {
            let ts = Self.base + Int64(i) * 28_800
            events.append(("u\(random.below(50))", "i\(random.below(20))", random.below(10) == 0 ? "purchase" : "view", ts))
        }
        let end = events.last!.ts
        for i in 0..<150 { events.append(("u\(random.below(50))", "i7", "view", end - 7_200_000 + Int64(i) * 48_000)) }
        events.sort { $0.ts < $1.ts }
        for (i, e) in events.enumerated() {
            try driver.pipe(#"{"user_id":"\#(e.user)","item_id":"\#(e.item)","event_type":"\#(e.type)","ts":\#(e.ts)}"#)
            if i % 800 == 799 { try driver.commit() }
        }
        try driver.commit()

        guard case .zset(let trend)? = driver.redis["item:trending"] else { return XCTFail("no item:trending") }
        XCTAssertEqual(trend.count, 20)
        for item in (0..<20).map({ "i\($0)" }) {
            let own = events.filter { $0.item == item }
            let last = own.map(\.ts).max()!
            func sum(_ halfLife: Double) -> Double {
                own.reduce(0.0) { $0 + ($1.type == "purchase" ? 10 : 1) * exp2(-Double(last - $1.ts) / halfLife) }
            }
            let rank = log2(sum(Self.hour)) + Double(last) / Self.hour
            let longRank = log2(sum(Self.day)) + Double(last) / Self.day
            XCTAssertEqual(trend[item] ?? .nan, rank - longRank, accuracy: 1e-6, item)
            guard case .hash(let h)? = driver.redis["item:\(item):decay"] else { XCTFail(item); continue }
            XCTAssertEqual(Double(h["long_score"] ?? "") ?? .nan, sum(Self.day), accuracy: 1e-9 * sum(Self.day), item)
            XCTAssertEqual(Double(h["score"] ?? "") ?? .nan, sum(Self.hour), accuracy: 1e-9 * sum(Self.hour), item)
            XCTAssertEqual(h["count"], "\(own.count)", item)
        }
        // The burst puts i7 first, though other items have had as many events over two days.
        XCTAssertEqual(trend.max { $0.value < $1.value }?.key, "i7")
    }

    func testTheTrendHalfLifeMustBeTheLongerOne() {
        let message = configError(nodes: "  - name: t\n    decay: {group_by: [item_id], half_life: 1d, trend_against: 1h, weights: {field: event_type, values: {view: 1}}}\n")
        assertConfigErrors([(message, "nodes[0].decay.trend_against", "must be longer than half_life")])
    }
}
