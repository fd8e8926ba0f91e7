import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// The session operator in the topology test driver against `SessionReference`, the
/// brute-force model that shares no code with it: in-order input, out-of-order input within
/// grace (merging two sessions), records beyond grace, random input, and restarts and
/// replays that must close the same sessions at the same event times.
final class SessionWindowTests: XCTestCase {
    private let gap: Int64 = 60_000, grace: Int64 = 10_000

    /// Sessions in Redis while open, deleted when closed; closed ones counted downstream.
    private var topology: Topology {
        get throws {
            let builder = StreamsBuilder(application: "sessions-unit")
            let clicks = builder.stream(topic: "clicks", key: "user_id", timestamp: "ts")
            let sessions = clicks.session("sessions", groupBy: ["user_id"], gap: .milliseconds(gap), grace: .milliseconds(grace))
            sessions.toRedis(.init(kind: .hash, key: "session:{session_id}"))
            sessions.toStream().aggregate("closed", groupBy: ["user_id"], sum: ["events", "purchase_value"])
                .toRedis(.init(kind: .hash, key: "user:{user_id}:closed"))
            return try builder.build()
        }
    }

    private struct Event {
        let user: String, time: Int64, type: String, item: String, category: String, price: Double?

        var json: String {
            "{\"user_id\":\"\(user)\",\"ts\":\(time),\"event_type\":\"\(type)\",\"item_id\":\"\(item)\",\"category\":\"\(category)\"" +
                (price.map { ",\"price\":\($0)" } ?? "") + "}"
        }
        var ref: RefEvent { RefEvent(key: user, time: time, eventType: type, item: item, category: category, price: price) }
    }

    private func event(_ user: String, _ time: Int64, _ type: String = "view", item: String = "i1", category: String = "c1", price: Double? = nil) -> Event {
        Event(user: user, time: time, type: type, item: item, category: category, price: price)
    }

    /// Redis as the reference says it should be after `events` (one partition).
    private func expected(_ events: [Event]) -> (redis: [String: TestRedisValue], late: Int) {
        var reference = SessionReference(gapMs: gap, graceMs: grace)
        for e in events { reference.add(e.ref) }
        var redis: [String: TestRedisValue] = [:]
        for s in reference.open { redis["session:\(s.id)"] = .hash(s.redisFields) }
        var closed: [String: (count: Int, events: Int, purchases: Double)] = [:]
        for s in reference.closed {
            closed[s.key, default: (0, 0, 0)].count += 1
            closed[s.key]!.events += s.events
            closed[s.key]!.purchases += s.purchaseValue
        }
        for (user, c) in closed {
            let purchases = c.purchases.rounded() == c.purchases ? String(Int64(c.purchases)) : "\(c.purchases)"
            redis["user:\(user):closed"] = .hash(["count": "\(c.count)", "sum_events": "\(c.events)", "sum_purchase_value": purchases])
        }
        return (redis, reference.late.count)
    }

    private func run(_ events: [Event], commitEvery: Int = 50, restartAt: Int? = nil, emptyDiskAt: Int? = nil) throws -> TopologyTestDriver {
        let driver = try TopologyTestDriver(try topology)
        for (i, e) in events.enumerated() {
            try driver.pipe(e.json)
            if i % commitEvery == commitEvery - 1 { try driver.commit() }
            if i == restartAt { try driver.restart() }         // uncommitted records lost, as in a crash…
            if i == emptyDiskAt { try driver.restartOnEmptyDisk() }
            if i == restartAt || i == emptyDiskAt {
                // …and piped again from the last commit, as the group's offsets say.
                let committed = Int(driver.committedOffset(partition: 0) ?? 0)
                for again in events[committed...i] { try driver.pipe(again.json) }
            }
        }
        try driver.commit()
        return driver
    }

    private func assertMatchesReference(_ events: [Event], _ driver: TopologyTestDriver, file: StaticString = #filePath, line: UInt = #line) {
        let (redis, late) = expected(events)
        XCTAssertEqual(driver.redis.filter { !$0.key.hasPrefix("eddy:") }, redis, file: file, line: line)
        XCTAssertEqual(driver.deadLetters.filter { $0.reason == "late" }.count, late, file: file, line: line)
    }

    func testInOrderSessionsCloseAtGapPlusGraceAndAreCountedOnce() throws {
        let events = [
            event("u1", 0), event("u1", 30_000, "cart", item: "i2", price: 5), event("u2", 40_000),
            event("u1", 80_000, "purchase", item: "i2", price: 5),  // within gap of 30 000: same session
            event("u2", 200_000),  // u1's session ends 80 000: closes once stream time passes 150 000
            event("u1", 300_000), event("u2", 500_000),
        ]
        let driver = try run(events, commitEvery: 2)
        assertMatchesReference(events, driver)
        XCTAssertNil(driver.redis["session:u1:0"], "a closed session's key is deleted")
        XCTAssertEqual(driver.redis["user:u1:closed"], .hash(["count": "2", "sum_events": "4", "sum_purchase_value": "5"]))
    }

    func testAnOutOfOrderRecordWithinGraceMergesTwoSessions() throws {
        let events = [
            // Two sessions, 65 000 apart (gap 60 000); the first stays open until stream time
            // passes 0 + 60 000 + 10 000.
            event("u1", 0), event("u1", 65_000),
            event("u1", 30_000, item: "i9"),  // 35 000 behind stream time, but its merged session ends at 65 000: merges both
            event("u2", 400_000),
        ]
        let driver = try run(events, commitEvery: 1)
        assertMatchesReference(events, driver)
        XCTAssertEqual(expected(events).late, 0)
        guard case .hash(let closed)? = driver.redis["user:u1:closed"] else { return XCTFail("u1's session did not close") }
        XCTAssertEqual(closed["count"], "1", "one session, not two")
        XCTAssertEqual(closed["sum_events"], "3")
        XCTAssertNil(driver.redis["session:u1:65000"], "the merged-away session's key is deleted")
    }

    func testRecordsBeyondGraceAreDeadLetteredAsLateAndChangeNothing() throws {
        let events = [
            event("u1", 0), event("u2", 200_000),
            event("u1", 100_000),  // its session would end at 100 000 < 190 000: late
            event("u3", 185_000),  // a new session ending 185 000 < 190 000: late too
            event("u2", 195_000),  // 5 000 behind: within grace
        ]
        let driver = try run(events)
        assertMatchesReference(events, driver)
        XCTAssertEqual(driver.deadLetters.filter { $0.reason == "late" }.map(\.value), [events[2].json, events[3].json])
    }

    /// Random users, types, prices and disorder; commits, crashes and a lost disk anywhere.
    func testRandomInputMatchesTheReferenceAcrossRestartsAndAReplay() throws {
        var rng = SystemRandomNumberGenerator()
        var time: Int64 = 1_767_225_600_000
        var events: [Event] = []
        for _ in 0..<2_000 {
            time += Int64.random(in: 0...8_000, using: &rng)
            let disorder = Int64.random(in: 0...100, using: &rng) < 10 ? Int64.random(in: 0...25_000, using: &rng) : 0
            let type = ["view", "view", "click", "cart", "purchase"].randomElement(using: &rng)!
            events.append(event("u\(Int.random(in: 0..<15, using: &rng))", time - disorder, type, item: "i\(Int.random(in: 0..<30, using: &rng))",
                                category: "c\(Int.random(in: 0..<4, using: &rng))", price: type == "cart" || type == "purchase" ? Double(Int.random(in: 1...999, using: &rng)) / 4 : nil))
        }
        let (reference, late) = expected(events)
        XCTAssertGreaterThan(late, 0, "some records are beyond grace")
        let plain = try run(events, commitEvery: 37)
        assertMatchesReference(events, plain)
        XCTAssertEqual(plain.redis.filter { !$0.key.hasPrefix("eddy:") }, reference)
        // The same input with a crash and a lost disk on the way: the same sessions close
        // at the same event times (timers and stream time come back with the stores).
        let interrupted = try run(events, commitEvery: 23, restartAt: 700, emptyDiskAt: 1_400)
        assertMatchesReference(events, interrupted)
        // A replay from scratch gives the same Redis.
        XCTAssertEqual(try run(events, commitEvery: 101).redis.filter { !$0.key.hasPrefix("eddy:") }, plain.redis.filter { !$0.key.hasPrefix("eddy:") })
    }
}
