@testable import EddyServe
import XCTest

final class RateLimiterTests: XCTestCase {
    /// Under constant demand a bucket admits its burst plus rate × time, no more: the
    /// closed form, against a client asking for one event every millisecond for 10 s.
    func testAdmitsBurstPlusRateTimesTime() {
        let limiter = RateLimiter(.init(eventsPerSecond: 100, burst: 50))
        var admitted = 0
        for ms in 0..<10_000 where limiter.take(1, client: "a", now: Double(ms) / 1000) == nil { admitted += 1 }
        // 50 at once, then 100/s for 9.999 s (the last token may still be accruing).
        XCTAssertTrue((50 + 999)...(50 + 1000) ~= admitted, "\(admitted)")
    }

    func testClientsHaveTheirOwnBuckets() {
        let limiter = RateLimiter(.init(eventsPerSecond: 1, burst: 10))
        XCTAssertNil(limiter.take(10, client: "a", now: 0))
        XCTAssertNotNil(limiter.take(1, client: "a", now: 0))
        XCTAssertNil(limiter.take(10, client: "b", now: 0), "b is not limited by a's use")
    }

    func testRefusalSaysWhenTheRequestWouldFit() throws {
        let limiter = RateLimiter(.init(eventsPerSecond: 4, burst: 8))
        XCTAssertNil(limiter.take(8, client: "a", now: 0))
        let wait = try XCTUnwrap(limiter.take(6, client: "a", now: 0.5))  // 2 tokens back after 0.5 s
        XCTAssertEqual(wait, 1.0, accuracy: 1e-9)  // 4 more at 4/s
        XCTAssertNil(limiter.take(6, client: "a", now: 1.5))
        XCTAssertEqual(limiter.take(9, client: "a", now: 100), .infinity, "more than the burst can never fit")
    }

    func testABatchIsRefusedWholeAndTakesNothing() {
        let limiter = RateLimiter(.init(eventsPerSecond: 1, burst: 5))
        XCTAssertNotNil(limiter.take(6, client: "a", now: 0))
        XCTAssertNil(limiter.take(5, client: "a", now: 0), "the refused request took no tokens")
    }
}
