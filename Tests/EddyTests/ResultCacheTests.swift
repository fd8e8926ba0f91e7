import EddyRecs
@testable import EddyServe
import XCTest

final class ResultCacheTests: XCTestCase {
    private let t0 = ContinuousClock.now
    private func items(_ name: String) -> [Recommendation] { [Recommendation(item: name, score: 1, reason: "r")] }

    func testAnAnswerIsReusedUntilItsTTLAndNotAfter() {
        let cache = ResultCache(ttl: .seconds(300), capacity: 10)
        cache.put("u1", items("a"), at: t0)
        XCTAssertEqual(cache.get("u1", at: t0 + .seconds(299)), items("a"))
        XCTAssertNil(cache.get("u1", at: t0 + .seconds(300)), "stale answers are not served")
        XCTAssertNil(cache.get("u2", at: t0))
    }

    func testPastItsCapacityTheOldestInsertionLeavesFirst() {
        let cache = ResultCache(ttl: .seconds(300), capacity: 2)
        cache.put("a", items("a"), at: t0)
        cache.put("b", items("b"), at: t0)
        cache.put("c", items("c"), at: t0)
        XCTAssertNil(cache.get("a", at: t0))
        XCTAssertEqual(cache.get("b", at: t0), items("b"))
        XCTAssertEqual(cache.count, 2, "bounded however many users ask")
    }

    func testAKeyPutAgainIsNotEvictedByItsOlderInsertion() {
        let cache = ResultCache(ttl: .seconds(300), capacity: 2)
        cache.put("a", items("a1"), at: t0)
        cache.put("b", items("b"), at: t0)
        cache.put("a", items("a2"), at: t0)  // newer than b now
        cache.put("c", items("c"), at: t0)   // evicts b, the oldest live insertion
        XCTAssertEqual(cache.get("a", at: t0), items("a2"))
        XCTAssertNil(cache.get("b", at: t0))
        XCTAssertEqual(cache.get("c", at: t0), items("c"))
    }

    func testManyInsertionsKeepTheBookkeepingBounded() {
        let cache = ResultCache(ttl: .seconds(300), capacity: 100)
        for i in 0..<50_000 { cache.put("k\(i % 150)", items("x"), at: t0) }
        XCTAssertEqual(cache.count, 100)
        // The last 100 keys put are the ones kept.
        let kept = (0..<150).filter { cache.get("k\($0)", at: t0) != nil }
        XCTAssertEqual(Set(kept), Set((49_900..<50_000).map { $0 % 150 }))
    }

    func testAnswersComputedAgainUnderCapacityDoNotGrowTheBookkeeping() {
        let cache = ResultCache(ttl: .seconds(300), capacity: 100_000)
        for i in 0..<200_000 { cache.put("user\(i % 1000)", items("x"), at: t0) }
        XCTAssertEqual(cache.count, 1000)
        XCTAssertLessThanOrEqual(cache.remembered, 2 * 1000 + 1024 + 1, "1000 keys put 200 times each")
        XCTAssertEqual(cache.get("user7", at: t0), items("x"))
    }
}
