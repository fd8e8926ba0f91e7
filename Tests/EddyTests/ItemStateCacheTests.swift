import EddyRecs
@testable import EddyServe
import XCTest

final class ItemStateCacheTests: XCTestCase {
    /// Zsets, scores and hashes that a test changes, counting what is read.
    private final class CountingState: RecsState {
        var zsets: [String: [ScoredMember]] = [:]
        var hashes: [String: [String: String]] = [:]
        var topsRead: [String] = []
        var membersRead: [String] = []
        var hashesRead: [String] = []

        func list(_ key: String) throws -> [String] { [] }
        func top(_ key: String, limit: Int) throws -> [ScoredMember] {
            topsRead.append(key)
            return Array((zsets[key] ?? []).prefix(limit))
        }
        func scores(_ key: String, members: [String]) throws -> [Double?] {
            membersRead += members
            return members.map { m in zsets[key]?.first { $0.member == m }?.score }
        }
        func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] {
            hashesRead += keys
            return keys.map { k in names.map { hashes[k]?[$0] } }
        }
        func string(_ key: String) throws -> String? { nil }
        func itemFactors(prefix: String) throws -> ItemFactors { ItemFactors() }
    }

    private let t0 = ContinuousClock.now

    func testAValueIsReusedUntilItsTTLAndReadAgainAfter() throws {
        let cache = ItemStateCache(ttl: .seconds(1))
        let state = CountingState()
        state.zsets["co_view:a"] = [ScoredMember("b", 2)]
        XCTAssertEqual(try cache.reading(state, at: t0).tops(["co_view:a"], limit: 5), [[ScoredMember("b", 2)]])
        state.zsets["co_view:a"] = [ScoredMember("c", 3)]
        XCTAssertEqual(try cache.reading(state, at: t0 + .milliseconds(999)).tops(["co_view:a"], limit: 5), [[ScoredMember("b", 2)]])
        XCTAssertEqual(state.topsRead, ["co_view:a"], "within the TTL nothing is read")
        XCTAssertEqual(try cache.reading(state, at: t0 + .seconds(1)).tops(["co_view:a"], limit: 5), [[ScoredMember("c", 3)]],
                       "a stale value is never served")
    }

    func testATopReadWithAShorterLimitIsReadAgainForALongerOne() throws {
        let cache = ItemStateCache(ttl: .seconds(1))
        let state = CountingState()
        state.zsets["item:popularity"] = (0..<10).map { ScoredMember("i\($0)", Double(10 - $0)) }
        XCTAssertEqual(try cache.reading(state, at: t0).tops(["item:popularity"], limit: 2).first?.count, 2)
        XCTAssertEqual(try cache.reading(state, at: t0).tops(["item:popularity"], limit: 5).first?.count, 5, "not the two kept")
        XCTAssertEqual(try cache.reading(state, at: t0).tops(["item:popularity"], limit: 3).first, Array(state.zsets["item:popularity"]!.prefix(3)))
        XCTAssertEqual(state.topsRead.count, 2, "a shorter top of a longer one read is answered from it")
        state.zsets["small"] = [ScoredMember("x", 1)]
        XCTAssertEqual(try cache.reading(state, at: t0).tops(["small"], limit: 50), [[ScoredMember("x", 1)]])
        XCTAssertEqual(try cache.reading(state, at: t0).tops(["small"], limit: 10), [[ScoredMember("x", 1)]], "a zset shorter than the limit")
    }

    func testOnlyMembersAndRowsNotKeptAreRead() throws {
        let cache = ItemStateCache(ttl: .seconds(1))
        let state = CountingState()
        state.zsets["item:popularity"] = [ScoredMember("a", 1), ScoredMember("b", 2)]
        XCTAssertEqual(try cache.reading(state, at: t0).scores("item:popularity", members: ["a", "z"]), [1, nil])
        XCTAssertEqual(try cache.reading(state, at: t0).scores("item:popularity", members: ["z", "b", "a"]), [nil, 2, 1])
        XCTAssertEqual(state.membersRead, ["a", "z", "b"], "an absent member is remembered as absent")
        state.hashes["catalog:a"] = ["category": "c1", "in_stock": "1"]
        XCTAssertEqual(try cache.reading(state, at: t0).fields(["catalog:a", "catalog:b"], ["category", "in_stock"]), [["c1", "1"], [nil, nil]])
        XCTAssertEqual(try cache.reading(state, at: t0).fields(["catalog:b", "catalog:a"], ["category", "in_stock"]), [[nil, nil], ["c1", "1"]])
        XCTAssertEqual(try cache.reading(state, at: t0).fields(["catalog:a"], ["category"]), [["c1"]], "other field names are another value")
        XCTAssertEqual(state.hashesRead, ["catalog:a", "catalog:b", "catalog:a"])
    }

    func testManyDistinctKeysDoNotGrowItPastItsCapacity() throws {
        let cache = ItemStateCache(ttl: .seconds(60), capacity: 10)
        let state = CountingState()
        for n in 0..<100 {
            _ = try cache.reading(state, at: t0).tops(["co_view:i\(n)"], limit: 5)
            _ = try cache.reading(state, at: t0).scores("item:popularity", members: ["i\(n)"])
            XCTAssertLessThanOrEqual(cache.count, 10)
        }
        XCTAssertGreaterThan(cache.count, 0)
    }

    func testEveryMemberCountsAgainstTheCapacityAndExpiredValuesLeaveWithoutIt() throws {
        let cache = ItemStateCache(ttl: .seconds(1), capacity: 100)
        let state = CountingState()
        for key in ["co_view:a", "co_view:b", "co_view:c"] { state.zsets[key] = (0..<60).map { ScoredMember("\(key)-\($0)", Double($0)) } }
        _ = try cache.reading(state, at: t0).tops(["co_view:a"], limit: 60)
        XCTAssertEqual(cache.count, 60, "a top of 60 members is 60 values")
        _ = try cache.reading(state, at: t0).tops(["co_view:b"], limit: 60)
        XCTAssertLessThanOrEqual(cache.count, 100, "two such tops are over the capacity of 100")
        _ = try cache.reading(state, at: t0 + .seconds(2)).tops(["co_view:a"], limit: 60)
        XCTAssertEqual(cache.count, 60)
        // Under the capacity, values past their TTL still leave at the next sweep.
        _ = try cache.reading(state, at: t0 + cache.sweepInterval + .seconds(3)).tops(["co_view:c"], limit: 5)
        XCTAssertEqual(cache.count, 5, "only the fresh top is left")
    }

    func testOnlyItemLevelKeysAreShared() {
        for prefix in ["", "v2:"] {
            let keys = RecsKeys(prefix: prefix)
            for key in [keys.coView("a"), keys.coView("user:x"), keys.coViewTotals, keys.popularity, keys.popularity(in: "c1"), keys.trending, keys.item("a")] {
                XCTAssertTrue(keys.isItemLevel(key), key)
            }
            for key in [keys.recent("u"), keys.categories("u"), keys.userFactors("u"), keys.cartVersion("u"), keys.session("u:1"), "other"] {
                XCTAssertFalse(keys.isItemLevel(key), "\(key): a user's own state is read fresh for every answer")
            }
        }
        XCTAssertFalse(RecsKeys(prefix: "v2:").isItemLevel("co_view:a"), "another namespace's key")
    }
}
