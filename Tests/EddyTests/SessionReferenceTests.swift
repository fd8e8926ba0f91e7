import EddyTestSupport
import XCTest

/// The session reference against hand-computed expectations, so that the session
/// operator's tests can trust it.
final class SessionReferenceTests: XCTestCase {
    private func ev(_ key: String, _ time: Int64, _ type: String? = nil, item: String? = nil,
                    category: String? = nil, price: Double? = nil) -> RefEvent {
        RefEvent(key: key, time: time, eventType: type, item: item, category: category, price: price)
    }

    private func session(_ key: String, _ start: Int64, _ end: Int64, events: Int, eventCounts: [String: Int] = [:],
                         distinctItems: Int = 0, categoryCounts: [String: Int] = [:], topCategory: String = "",
                         lastItem: String = "", cartValue: Double = 0, purchaseValue: Double = 0) -> RefSession {
        RefSession(key: key, start: start, end: end, events: events, eventCounts: eventCounts, distinctItems: distinctItems,
                   categoryCounts: categoryCounts, topCategory: topCategory, lastItem: lastItem,
                   cartValue: cartValue, purchaseValue: purchaseValue)
    }

    func testInOrderEventsFormSessionsThatCloseAfterGapAndGrace() {
        var ref = SessionReference(gapMs: 10, graceMs: 5)
        ref.add(ev("a", 0, "view", item: "i1", category: "shoes"))
        ref.add(ev("a", 5, "cart", item: "i2", category: "shoes", price: 20))
        ref.add(ev("a", 15, "purchase", item: "i2", category: "hats", price: 20))  // 15 − 5 = 10 = gap: same session
        XCTAssertEqual(ref.closed, [])
        XCTAssertEqual(ref.open, [session("a", 0, 15, events: 3, eventCounts: ["view": 1, "cart": 1, "purchase": 1], distinctItems: 2,
                                          categoryCounts: ["shoes": 2, "hats": 1], topCategory: "shoes", lastItem: "i2",
                                          cartValue: 20, purchaseValue: 20)])
        // 26 > 15 + 10: a new session. [0, 15] closes when stream time passes 15 + 10 + 5 = 30.
        ref.add(ev("a", 26, "view", item: "i3"))
        ref.add(ev("b", 30))
        XCTAssertEqual(ref.closed, [], "30 is not past 30")
        XCTAssertEqual(ref.open.map(\.id), ["a:0", "a:26", "b:30"])
        ref.add(ev("b", 31))
        XCTAssertEqual(ref.closed.map(\.id), ["a:0"])
        XCTAssertEqual(ref.closed[0].durationMs, 15)
        XCTAssertEqual(ref.open, [session("a", 26, 26, events: 1, eventCounts: ["view": 1], distinctItems: 1, lastItem: "i3"),
                                  session("b", 30, 31, events: 2)])
        XCTAssertEqual(ref.late, [])
        XCTAssertEqual(ref.streamTime, 31)
    }

    func testFeaturesByBruteForce() {
        var ref = SessionReference(gapMs: 1000, graceMs: 0, cartTypes: ["cart", "wishlist"])
        ref.add(ev("u", 100, "view", item: "i1", category: "shoes"))
        ref.add(ev("u", 300, "cart", item: "i2", category: "shoes", price: 20))
        ref.add(ev("u", 200, "view", item: "i3", category: "hats"))     // out of order; the session ends at 300, not late
        ref.add(ev("u", 300, "purchase", item: "i4", category: "hats", price: 7.5))  // same time as i2, arrived later
        ref.add(ev("u", 250, nil, category: nil, price: 5))           // no type: no count, no value
        ref.add(ev("u", 150, "cart", item: "i1"))                     // a cart without a price adds nothing
        ref.add(ev("u", 120, "wishlist", price: 2.5))
        ref.add(ev("u", 130, "view", item: nil, category: "bags"))
        XCTAssertEqual(ref.late, [])
        XCTAssertEqual(ref.open, [session("u", 100, 300, events: 8, eventCounts: ["view": 3, "cart": 2, "purchase": 1, "wishlist": 1],
                                          distinctItems: 4, categoryCounts: ["shoes": 2, "hats": 2, "bags": 1],
                                          topCategory: "hats", lastItem: "i4", cartValue: 22.5, purchaseValue: 7.5)])
        XCTAssertEqual(ref.open[0].id, "u:100")
        XCTAssertEqual(ref.open[0].durationMs, 200)
        // The latest event with an item decides, whatever the arrival order of the others.
        ref.add(ev("u", 299, "view", item: "i9"))
        XCTAssertEqual(ref.open[0].lastItem, "i4")
        ref.add(ev("u", 301, "view"))  // no item: lastItem unchanged
        XCTAssertEqual(ref.open[0].lastItem, "i4")
    }

    func testASessionWithoutItemsOrCategoriesHasEmptyFeatures() {
        var ref = SessionReference(gapMs: 10)
        ref.add(ev("a", 0, "purchase"))
        XCTAssertEqual(ref.open, [session("a", 0, 0, events: 1, eventCounts: ["purchase": 1])])
        XCTAssertEqual(ref.open[0].topCategory, "")
        XCTAssertEqual(ref.open[0].lastItem, "")
        XCTAssertEqual(ref.open[0].purchaseValue, 0)
    }

    func testAnOutOfOrderEventWithinGraceMergesTwoSessions() {
        var ref = SessionReference(gapMs: 10, graceMs: 15)
        ref.add(ev("a", 0, "view", item: "i1"))
        ref.add(ev("a", 20, "cart", item: "i2", price: 3))    // 20 > 0 + 10: a second session
        XCTAssertEqual(ref.open.map(\.id), ["a:0", "a:20"], "[0,0] closes only after 0 + 10 + 15 = 25")
        // 10 is within gap of both (10 ≤ 0 + 10, 10 ≥ 20 − 10); the merged end 20 ≥ 20 − 15.
        ref.add(ev("a", 10, "view", item: "i3"))
        XCTAssertEqual(ref.late, [])
        XCTAssertEqual(ref.open, [session("a", 0, 20, events: 3, eventCounts: ["view": 2, "cart": 1], distinctItems: 3,
                                          lastItem: "i2", cartValue: 3)])
        XCTAssertEqual(ref.closed, [], "merged sessions are gone, not closed")
        ref.add(ev("a", 45))  // 20 + 10 + 15 = 45: not yet
        XCTAssertEqual(ref.closed, [])
        XCTAssertEqual(ref.open.map(\.id), ["a:0", "a:45"])
        ref.add(ev("b", 46))
        XCTAssertEqual(ref.closed.map(\.id), ["a:0"])
        XCTAssertEqual(ref.closed[0].events, 3)
    }

    func testLateEventsAreCountedAndChangeNothing() {
        var ref = SessionReference(gapMs: 10, graceMs: 5)
        ref.add(ev("a", 0, "view"))          // arrival 0
        ref.add(ev("b", 100, "view"))        // 1: stream time 100; a:0 closes (0 + 15 < 100)
        XCTAssertEqual(ref.closed.map(\.id), ["a:0"])
        let closedBefore = ref.closed
        ref.add(ev("a", 3, "purchase", price: 9))  // 2: its closed session does not take it; 3 < 100 − 5
        ref.add(ev("a", 94, "view"))         // 3: 94 < 95: late
        ref.add(ev("b", 80, "view"))         // 4: touches nothing (80 < 100 − 10); 80 < 95: late
        XCTAssertEqual(ref.late, [2, 3, 4])
        XCTAssertEqual(ref.closed, closedBefore)
        XCTAssertEqual(ref.open, [session("b", 100, 100, events: 1, eventCounts: ["view": 1])])
        XCTAssertEqual(ref.streamTime, 100, "late events do not move stream time")
        // Lateness is the merged session's end, not the event's time: 92 < 95, but it joins
        // b:100 (92 ≥ 100 − 10), whose end 100 ≥ 95.
        ref.add(ev("b", 92, "cart", price: 1))  // 5
        XCTAssertEqual(ref.open, [session("b", 92, 100, events: 2, eventCounts: ["view": 1, "cart": 1], cartValue: 1)])
        ref.add(ev("a", 95, "view"))         // 6: 95 is not < 95: a new session
        XCTAssertEqual(ref.late, [2, 3, 4])
        XCTAssertEqual(ref.open.map(\.id), ["a:95", "b:92"])
    }

    func testSessionsCloseInOrderOfCloseTimeThenKey() {
        var ref = SessionReference(gapMs: 10, graceMs: 0)
        ref.add(ev("x", 0))
        ref.add(ev("y", 2))
        ref.add(ev("b", 3))
        ref.add(ev("a", 3))
        ref.add(ev("c", 10))   // x closes at 10: not past 10 yet
        XCTAssertEqual(ref.closed, [])
        XCTAssertEqual(ref.open.map(\.id), ["a:3", "b:3", "c:10", "x:0", "y:2"], "open sessions sort by key, start")
        ref.add(ev("c", 11))   // past 10: x
        XCTAssertEqual(ref.closed.map(\.id), ["x:0"])
        ref.add(ev("z", 100))  // y (12), then a and b (13, by key), then c (21)
        XCTAssertEqual(ref.closed.map(\.id), ["x:0", "y:2", "a:3", "b:3", "c:10"])
        XCTAssertEqual(ref.closed.last, session("c", 10, 11, events: 2))
        XCTAssertEqual(ref.open.map(\.id), ["z:100"])
    }

    func testWithoutGraceAnyEventBehindAnEndedSessionIsLate() {
        var ref = SessionReference(gapMs: 10)
        ref.add(ev("a", 50))
        ref.add(ev("a", 45))   // joins [50, 50]: merged end 50 ≥ 50
        ref.add(ev("b", 49))   // a new session ending at 49 < 50: late
        XCTAssertEqual(ref.late, [2])
        XCTAssertEqual(ref.open, [session("a", 45, 50, events: 2)])
    }
}
