@testable import EddyConfig
@testable import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// `recent` with `distinct` and a `list` sink — a user's last distinct items, newest first,
/// as the architecture seed's `user:recent:{user}` — against a reference written plainly:
/// every item's latest time per user, the `size` latest of them.
final class RecentDistinctTests: XCTestCase {
    private func insert(_ list: inout RecentValues, _ value: String, _ time: Int64, keeping limit: Int = 3) {
        Array(value.utf8).withUnsafeBufferPointer { list.insert($0, at: time, keeping: limit, distinct: true) }
    }

    func testAValueIsKeptOnceAtItsLatestTime() {
        var list = RecentValues()
        insert(&list, "a", 10)
        insert(&list, "b", 20)
        insert(&list, "a", 30)  // a moves to the front
        XCTAssertEqual(list.newestFirst.map { String(decoding: $0, as: UTF8.self) }, ["a", "b"])
        insert(&list, "b", 15)  // older than the b kept: nothing changes
        XCTAssertEqual(list.newestFirst.map { String(decoding: $0, as: UTF8.self) }, ["a", "b"])
        insert(&list, "c", 25)
        insert(&list, "d", 40)  // four distinct: the oldest, b, goes
        XCTAssertEqual(list.newestFirst.map { String(decoding: $0, as: UTF8.self) }, ["d", "a", "c"])
        XCTAssertEqual(list.count, 3)
        // Merging partials gives the same list as the records one by one.
        var left = RecentValues(), right = RecentValues(), merged = RecentValues()
        for (i, (v, t)) in [("a", 10), ("b", 20), ("a", 30), ("b", 15), ("c", 25), ("d", 40)].enumerated() {
            Array(v.utf8).withUnsafeBufferPointer { i % 2 == 0 ? left.insert($0, at: Int64(t), keeping: 3, distinct: true) : right.insert($0, at: Int64(t), keeping: 3, distinct: true) }
        }
        for part in [left, right] { part.encoded.withUnsafeBytes { merged.merge($0, keeping: 3, distinct: true) } }
        XCTAssertEqual(merged.newestFirst, list.newestFirst)
    }

    func testTheLastDistinctItemsOfEachUserAreItsRedisListNewestFirst() throws {
        let text = """
            application: recent-items
            source: {topic: clicks, key: user_id, timestamp: ts}
            nodes:
              - name: recent_items
                recent: {group_by: [user_id], field: item_id, size: 5, distinct: true}
                to_redis: {type: list, key: "user:recent:{user_id}", ttl: 24h}
            """
        let driver = try TopologyTestDriver(try TopologyFile.parse(text, file: "recent.yaml"), partitions: 2)
        var random = TestRandom(seed: 8)
        let base: Int64 = 1_767_225_600_000
        var latest: [String: [String: (time: Int64, order: Int)]] = [:]  // user -> item -> latest time, arrival
        for i in 0..<3000 {
            let user = "u\(random.below(40))", item = "i\(random.below(12))"
            // Mostly in order, some up to 10 minutes late.
            let ts = base + Int64(i) * 1000 - (random.below(10) == 0 ? Int64(random.below(600_000)) : 0)
            try driver.pipe(#"{"user_id":"\#(user)","item_id":"\#(item)","ts":\#(ts)}"#)
            if i % 400 == 399 { try driver.commit() }
            if let seen = latest[user]?[item], seen.time > ts { continue }  // an older repeat changes nothing
            latest[user, default: [:]][item] = (ts, i)
        }
        try driver.commit()
        for (user, items) in latest {
            let expected = items.sorted { ($0.value.time, $0.value.order) > ($1.value.time, $1.value.order) }.prefix(5).map(\.key)
            XCTAssertEqual(driver.redis["user:recent:\(user)"], .list(expected), user)
            XCTAssertEqual(driver.ttl("user:recent:\(user)"), 86_400, user)
        }
    }

    func testAListSinkIsOnlyForARecentNode() {
        let cases: [(String, String, String)] = [
            (configError(nodes: "  - name: a\n    aggregate: {group_by: [user_id]}\n    to_redis: {type: list, key: \"l:{user_id}\"}\n"),
             "nodes[0].to_redis[0].type", "a list sink writes the values of a 'recent' node"),
            (configError(nodes: "  - name: r\n    recent: {group_by: [user_id], field: item_id, size: 5}\n    to_redis: {type: list, key: \"l:{user_id}\", value: count}\n"),
             "nodes[0].to_redis[0].value", "not 'count'"),
            (configError(nodes: "  - name: r\n    recent: {group_by: [user_id], field: item_id, size: 5}\n    to_redis: {type: list, key: \"l:{user_id}\", field: x}\n"),
             "nodes[0].to_redis[0].field", "a list sink has no field"),
        ]
        assertConfigErrors(cases)
    }
}
