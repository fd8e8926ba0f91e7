@testable import EddyGen
import Foundation
import XCTest

final class ClickstreamGeneratorTests: XCTestCase {
    private func events(_ n: Int, seed: UInt64 = 42) -> [ClickstreamGenerator.Event] {
        var options = ClickstreamGenerator.Options()
        options.seed = seed
        options.users = 2_000
        var g = ClickstreamGenerator(options)
        return (0..<n).map { _ in g.next() }
    }

    func testSameSeedSameEventsOtherSeedOtherEvents() {
        XCTAssertEqual(events(5_000), events(5_000))
        XCTAssertNotEqual(events(5_000), events(5_000, seed: 43))
    }

    func testTimestampsNeverDecreaseAndSessionsAreWellFormed() {
        let all = events(100_000)
        var sessions: [Int: [ClickstreamGenerator.Event]] = [:]
        for (a, b) in zip(all, all.dropFirst()) { XCTAssertLessThanOrEqual(a.timestamp, b.timestamp) }
        for e in all { sessions[e.session, default: []].append(e) }
        for events in sessions.values {
            XCTAssertLessThanOrEqual(events.count, 30)
            XCTAssertEqual(events.first?.kind, .view, "a session starts with a view")
            XCTAssertEqual(Set(events.map(\.user)).count, 1)
            for (a, b) in zip(events, events.dropFirst()) { XCTAssert((5_000...120_000).contains(b.timestamp - a.timestamp)) }
            let viewed = Set(events.filter { $0.kind == .view }.map(\.item))
            for e in events where e.kind != .view { XCTAssertTrue(viewed.contains(e.item)) }
        }
    }

    func testEventMixPricesAndPlantedTaste() {
        let all = events(200_000)
        var options = ClickstreamGenerator.Options()
        options.users = 2_000
        let g = ClickstreamGenerator(options)
        let share = { (k: ClickstreamGenerator.Event.Kind) in Double(all.filter { $0.kind == k }.count) / Double(all.count) }
        XCTAssert((0.70...0.85).contains(share(.view)), "views \(share(.view))")
        XCTAssert((0.10...0.22).contains(share(.click)))
        XCTAssert((0.02...0.08).contains(share(.cart)))
        XCTAssert((0.005...0.04).contains(share(.purchase)))
        XCTAssertTrue(all.allSatisfy { ($0.kind == .cart || $0.kind == .purchase) == ($0.priceCents != nil) })
        let views = all.filter { $0.kind == .view }
        let inTaste = views.filter { g.preferredCategories(of: $0.user).contains($0.category) }.count
        XCTAssertGreaterThan(Double(inTaste) / Double(views.count), 0.7, "users mostly view their preferred categories")
        let top = Dictionary(grouping: views, by: \.item).mapValues(\.count).max { $0.value < $1.value }!
        XCTAssertLessThan(top.key, 100, "popularity is skewed toward low item ids (Zipf)")
    }

    func testJSONIsValidAndMatchesTheEvent() throws {
        for e in events(2_000) {
            var out: [UInt8] = []
            e.appendJSON(to: &out)
            let object = try JSONSerialization.jsonObject(with: Data(out)) as! [String: Any]
            XCTAssertEqual(object["user_id"] as? String, "u\(e.user)")
            XCTAssertEqual(object["session_id"] as? String, "s\(e.session)")
            XCTAssertEqual(object["item_id"] as? String, "i\(e.item)")
            XCTAssertEqual(object["category"] as? String, "c\(e.category)")
            XCTAssertEqual(object["event_type"] as? String, e.kind.rawValue)
            XCTAssertEqual((object["ts"] as? NSNumber)?.int64Value, e.timestamp)
            if let cents = e.priceCents {
                XCTAssertEqual(object["price"] as? Double, Double(cents) / 100)
            } else {
                XCTAssertNil(object["price"])
            }
        }
    }
}
