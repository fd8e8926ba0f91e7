import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// An aggregate of an aggregate's rows (Kafka Streams' KTable.groupBy().aggregate()) in the
/// topology test driver, against references computed plainly from the final per-user
/// tallies: every change of a row takes its old values back, so the second aggregate
/// describes the rows as they are now, and groups left empty leave Redis.
final class AggregateOfAggregateTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000

    private struct Event {
        let user: String, category: String, price: Double, ts: Int64
        var json: String { #"{"user_id":"\#(user)","category":"\#(category)","price":\#(price),"ts":\#(ts)}"# }
    }

    private func events(_ count: Int, seed: UInt64) -> [Event] {
        var random = TestRandom(seed: seed)
        return (0..<count).map { i in Event(user: "u\(random.below(40))", category: "c\(random.below(6))", price: Double(random.below(1000)) / 4, ts: Self.base + Int64(i) * 1000) }
    }

    func testRowsRegroupedByAnotherFieldAndByAnOutputMatchTheTalliesAsTheyAreAtTheEnd() throws {
        let text = """
        application: two-hop
        source: {topic: clicks, key: user_id, timestamp: ts}
        nodes:
          - name: per_user_category
            aggregate: {group_by: [user_id, category], sum: [price]}
          - name: per_category                  # re-keyed: users and events per category
            input: per_user_category
            aggregate: {group_by: [category], sum: [count, sum_price]}
            to_redis: {type: hash, key: "category:{category}"}
          - name: per_user                      # local: categories and events per user
            input: per_user_category
            aggregate: {group_by: [user_id], sum: [count]}
            to_redis: {type: hash, key: "user:{user_id}"}
          - name: per_user_total
            aggregate: {group_by: [user_id], sum: [price]}
          - name: users_by_spend                # grouped by an output: a row moves at every event
            input: per_user_total
            aggregate: {group_by: [sum_price]}
            to_redis: {type: zset, key: "users_by_spend", member: "{sum_price}", score: count}
        """
        let topology = try TopologyFile.parse(text, file: "two-hop.yaml")
        let driver = try TopologyTestDriver(topology, partitions: 3)
        let input = events(5000, seed: 5)
        for (i, e) in input.enumerated() {
            try driver.pipe(e.json)
            if i % 700 == 699 { try driver.commit() }
        }
        try driver.commit()

        // The reference: tallies per (user, category), then regrouped by hand.
        var tally: [String: [String: (count: Int, price: Double)]] = [:]  // user -> category -> tally
        for e in input {
            tally[e.user, default: [:]][e.category, default: (0, 0)].count += 1
            tally[e.user]![e.category]!.price += e.price
        }
        var expected: [String: TestRedisValue] = [:]
        var perCategory: [String: (users: Int, events: Int, price: Double)] = [:]
        for (_, categories) in tally {
            for (category, t) in categories {
                perCategory[category, default: (0, 0, 0)].users += 1
                perCategory[category]!.events += t.count
                perCategory[category]!.price += t.price
            }
        }
        var usersBySpend: [String: Int] = [:]
        var spend: [String: Double] = [:]  // in input order, as the per-user total adds them
        for e in input { spend[e.user, default: 0] += e.price }
        for (user, categories) in tally {
            let events = categories.values.reduce(0) { $0 + $1.count }
            expected["user:\(user)"] = .hash(["count": "\(categories.count)", "sum_count": "\(events)"])
            // Prices are quarters, so every sum is exact; integral ones are written without ".0".
            let total = spend[user]!
            usersBySpend[total == total.rounded() ? "\(Int(total))" : "\(total)", default: 0] += 1
        }
        expected["users_by_spend"] = .zset(usersBySpend.mapValues(Double.init))
        XCTAssertEqual(Set(driver.redis.keys), Set(expected.keys).union(perCategory.keys.map { "category:\($0)" }))
        for (key, value) in expected { XCTAssertEqual(driver.redis[key], value, key) }
        for (category, want) in perCategory {
            guard case .hash(let got)? = driver.redis["category:\(category)"] else { XCTFail(category); continue }
            XCTAssertEqual(got["count"], "\(want.users)", category)
            XCTAssertEqual(got["sum_count"], "\(want.events)", category)
            // Subtracting old sums and adding new ones rounds differently from summing once.
            XCTAssertEqual(Double(got["sum_sum_price"] ?? "") ?? -1, want.price, accuracy: 1e-6 * want.price, category)
        }
        XCTAssertGreaterThan(usersBySpend.count, 30, "rows moved between many groups")
    }

    func testOnlyAnAggregateFeedsAnAggregate() {
        func error(_ nodes: String) -> String { configError(nodes: nodes) }
        let cases: [(String, String, String)] = [
            (error("  - name: r\n    recent: {group_by: [user_id], field: item_id, size: 5}\n  - name: a\n    input: r\n    aggregate: {group_by: [user_id]}\n"),
             "nodes[1].input", "'r' (recent) cannot feed a 'aggregate' node"),
            (error("  - name: a\n    aggregate: {group_by: [user_id]}\n  - name: f\n    input: a\n    filter: {field: count, exists: true}\n"),
             "nodes[1].input", "'a' (aggregate) cannot feed a 'filter' node"),
            (error("  - name: a\n    aggregate: {group_by: [user_id]}\n  - name: b\n    input: a\n    aggregate: {group_by: [price]}\n"),
             "nodes[1].aggregate.group_by[0]", "field 'price' is not available here (available: user_id, count)"),
            (error("  - name: a\n    aggregate: {group_by: [user_id]}\n  - name: b\n    input: a\n    aggregate: {group_by: [count]}\n"),
             "nodes[1].aggregate.group_by[0]", "'count' is also the name of one of this node's outputs"),
            (error("  - name: s\n    session: {group_by: [user_id, events], gap: 1m}\n    to_redis: {type: hash, key: \"s:{session_id}\"}\n"),
             "nodes[0].session.group_by[1]", "'events' is also the name of one of this node's outputs"),
        ]
        assertConfigErrors(cases)
    }
}
