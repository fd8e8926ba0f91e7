import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// `state_ttl` (`Topology.Node.stateTTLMs`) on `recent`, `decay` and `aggregate`, in the
/// topology test driver, against a reference written plainly: per partition, records in
/// order; stream time is the largest time so far; a group's last touch is the step (TTL/8)
/// of the stream time at its last record; after each record, every group whose last step's
/// end + TTL is behind stream time is gone, and starts afresh if it comes back.
final class StateTTLTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000
    private static let minute: Int64 = 60_000
    private static let ttl: Int64 = 60 * minute
    private static let step = ttl / 8

    private static let topology = """
        application: ttl
        source: {topic: clicks, key: user_id, timestamp: ts, required: [item_id]}
        nodes:
          - name: recent
            recent: {group_by: [user_id], field: item_id, size: 4, distinct: true}
            state_ttl: 1h
            to_redis: {type: list, key: "recent:{user_id}"}
          - name: interest
            decay:
              group_by: [user_id, item_id]
              half_life: 30m
              weights: {field: event_type, values: {view: 1, click: 3}}
            state_ttl: 1h
            to_redis: {type: zset, key: "interest:{user_id}", member: "{item_id}", score: rank}
          - name: counts
            aggregate: {group_by: [user_id]}
            state_ttl: 1h
            to_redis: {type: string, key: "count:{user_id}", value: count}
        """

    /// 12 users over 10 hours of event time, each active in bursts with idle spells longer
    /// and shorter than the TTL, so groups leave, stay, and come back; half of them leave
    /// for good two hours before the end.
    private func clicks(seed: UInt64) -> [TestClick] {
        var random = TestRandom(seed: seed)
        var out: [TestClick] = []
        var t = Self.base
        var used = Set<Int64>()
        for i in 0..<2_400 {
            t += 1 + Int64(random.below(30_000))
            // One in ten is late by up to 20 minutes: a touch is on stream time, not the
            // record's. No two records share a time (a tie's order is arrival's).
            var ts = random.below(10) == 0 ? t - Int64(random.below(1_200_000)) : t
            while !used.insert(ts).inserted { ts += 1 }
            // A user is awake in some 40-minute slots of its own pattern: idle spells vary.
            let user = random.below(12)
            let slot = Int((t - Self.base) / (40 * Self.minute))
            if (slot * 7 + user * 3) % 5 < 2 { continue }
            // Half the users leave for good well before the end.
            if i > 1_900, user >= 6 { continue }
            out.append(TestClick(user: user, item: "i\(random.below(8))", type: random.below(4) == 0 ? "click" : "view", ts: ts))
        }
        return out
    }

    private struct Expected {
        var recent: [String: [String]] = [:]  // user → items, newest first
        var interest: [String: Set<String>] = [:]  // user → items with a decay group
        var counts: [String: Int] = [:]
        var storeRows: [String: Int] = [:]  // aggregate → rows (groups and touch rows)
    }

    private func reference(_ input: [TestClick]) -> Expected {
        func step(_ t: Int64) -> Int64 { t >= 0 ? t / Self.step : (t - Self.step + 1) / Self.step }
        func due(_ s: Int64) -> Int64 { (s + 1) * Self.step + Self.ttl }
        var expected = Expected()
        for p in [0, 1] {
            var streamTime = Int64.min
            // Per aggregate: group → its steps touched whose timers have not fired; and state.
            var touches: [String: [String: Set<Int64>]] = ["recent": [:], "interest": [:], "counts": [:]]
            var recent: [String: [(item: String, ts: Int64)]] = [:]
            var seen: [String: [String: Int64]] = [:]  // user → item → latest time, since the user last left
            var interest: [String: Set<String>] = [:]
            var counts: [String: Int] = [:]
            for c in input where c.partition == Int32(p) {
                let user = "u\(c.user)"
                streamTime = max(streamTime, c.ts)
                let s = step(streamTime)
                // The user's distinct items at their latest times (an older repeat changes
                // nothing; one that fell out of the last 4 comes back if it is newer).
                var items = seen[user, default: [:]]
                items[c.item] = max(items[c.item] ?? .min, c.ts)
                seen[user] = items
                recent[user] = Array(items.map { (item: $0.key, ts: $0.value) }.sorted { $0.ts > $1.ts }.prefix(4))
                touches["recent"]![user, default: []].insert(s)
                interest[user, default: []].insert(c.item)
                touches["interest"]![user + "/" + c.item, default: []].insert(s)
                counts[user, default: 0] += 1
                touches["counts"]![user, default: []].insert(s)
                // Timers due: a group whose last step is due leaves; fired steps' rows go.
                for name in touches.keys {
                    for (group, steps) in touches[name]! {
                        let last = steps.max()!
                        if due(last) < streamTime {
                            touches[name]![group] = nil
                            switch name {
                            case "recent":
                                recent[group] = nil
                                seen[group] = nil
                            case "counts": counts[group] = nil
                            default:
                                let parts = group.split(separator: "/").map(String.init)
                                interest[parts[0]]?.remove(parts[1])
                                if interest[parts[0]]?.isEmpty == true { interest[parts[0]] = nil }
                            }
                        } else {
                            touches[name]![group] = steps.filter { due($0) >= streamTime }
                        }
                    }
                }
            }
            for (user, list) in recent { expected.recent[user] = list.map(\.item) }
            expected.interest.merge(interest) { a, _ in a }
            expected.counts.merge(counts) { a, _ in a }
            for (name, groups) in touches {
                expected.storeRows[name, default: 0] += groups.count + groups.values.map(\.count).reduce(0, +)
            }
        }
        return expected
    }

    private func assertMatches(_ driver: TopologyTestDriver, _ expected: Expected, file: StaticString = #filePath, line: UInt = #line) throws {
        var recent: [String: [String]] = [:], interest: [String: Set<String>] = [:], counts: [String: Int] = [:]
        for (key, value) in driver.redis {
            let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
            switch (parts[0], value) {
            case ("recent", .list(let items)): recent[parts[1]] = items
            case ("interest", .zset(let z)): interest[parts[1]] = Set(z.keys)
            case ("count", .string(let s)): counts[parts[1]] = Int(s)
            default: XCTFail("unexpected key \(key)", file: file, line: line)
            }
        }
        XCTAssertEqual(recent, expected.recent, file: file, line: line)
        XCTAssertEqual(interest, expected.interest, file: file, line: line)
        XCTAssertEqual(counts, expected.counts, file: file, line: line)
        for name in ["recent", "interest", "counts"] {
            XCTAssertEqual(try driver.storeEntries(name), expected.storeRows[name], "rows of \(name)", file: file, line: line)
        }
    }

    func testIdleGroupsLeaveTheStoreAndRedisAndComeBackAfresh() throws {
        let input = clicks(seed: 21)
        let expected = reference(input)
        let driver = try TopologyTestDriver.run(Self.topology, input, commitEvery: 97)
        defer { driver.close() }
        try assertMatches(driver, expected)
        // The input makes the test mean something: groups left, and groups stayed.
        let users = Set(input.map { "u\($0.user)" })
        XCTAssertGreaterThan(users.count - expected.counts.count, 0, "no user went idle for the TTL at the end")
        XCTAssertGreaterThan(expected.counts.count, 0)
        XCTAssertGreaterThan(driver.expiredGroups, 20, "groups expired and came back along the way")
    }

    func testARestartAndAnotherCommitCadenceExpireTheSameGroups() throws {
        let input = clicks(seed: 22)
        let expected = reference(input)
        let driver = try TopologyTestDriver.run(Self.topology, input, commitEvery: 13, restartAt: input.count / 2)
        defer { driver.close() }
        try assertMatches(driver, expected)
    }

    func testARestoreFromTheChangelogsExpiresTheSameGroups() throws {
        let input = clicks(seed: 23)
        let expected = reference(input)
        let driver = try TopologyTestDriver(try TopologyFile.parse(Self.topology, file: "ttl.yaml"), partitions: 2)
        defer { driver.close() }
        for (i, c) in input.enumerated() {
            try driver.pipe(c.json, partition: c.partition)
            if i % 150 == 149 { try driver.commit() }
            if i == input.count / 3 || i == 2 * input.count / 3 {
                try driver.commit()
                try driver.restartOnEmptyDisk()
            }
        }
        try driver.commit()
        try assertMatches(driver, expected)
    }

    /// Years of silence, then a record: every group idle before it leaves at once, by one
    /// timer per step that had touches (not one per step of the gap).
    func testAJumpInStreamTimeExpiresEveryIdleGroupAtOnce() throws {
        var input = clicks(seed: 24)
        let later = input.map(\.ts).max()! + 5 * 365 * 86_400_000
        input += [TestClick(user: 0, item: "i0", type: "view", ts: later), TestClick(user: 1, item: "i0", type: "view", ts: later + 1)]
        let expected = reference(input)
        XCTAssertEqual(Set(expected.counts.keys), ["u0", "u1"])
        let driver = try TopologyTestDriver.run(Self.topology, input, commitEvery: 97)
        defer { driver.close() }
        try assertMatches(driver, expected)
    }

    func testTheSwiftDSLBuildsTheSameTopology() throws {
        let builder = StreamsBuilder(application: "ttl")
        let clicks = builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["item_id"])
        clicks.recent("recent", groupBy: ["user_id"], field: "item_id", size: 4, distinct: true).stateTTL(.seconds(3600))
            .toRedis(.init(kind: .list, key: "recent:{user_id}"))
        clicks.decay("interest", groupBy: ["user_id", "item_id"], weights: .init(field: "event_type", values: [.init("view", 1), .init("click", 3)]),
                     halfLife: .seconds(1800)).stateTTL(.seconds(3600))
            .toRedis(.init(kind: .zset, key: "interest:{user_id}", field: "{item_id}", value: "rank"))
        clicks.aggregate("counts", groupBy: ["user_id"]).stateTTL(.seconds(3600))
            .toRedis(.init(kind: .string, key: "count:{user_id}", value: "count"))
        let fromFile = try TopologyFile.parse(Self.topology, file: "ttl.yaml")
        XCTAssertEqual(try builder.build(), fromFile)
        XCTAssertTrue(fromFile.describe(.text).contains("groups idle 1h of event time leave"), fromFile.describe(.text))
    }

    func testStateTTLWhereItCannotHoldIsAnError() {
        assertConfigErrors([
            (configError(nodes: """
                - name: s
                  session: {group_by: [user_id], gap: 30m}
                  state_ttl: 1h
                """), "state_ttl", "only an aggregate, recent, decay or model"),
            (configError(nodes: """
                - name: pop
                  decay: {group_by: [item_id], half_life: 1h, weights: {field: event_type, values: {view: 1}}}
                  state_ttl: 1d
                """), "state_ttl", "re-keys the stream"),
            (configError(nodes: """
                - name: c
                  aggregate: {group_by: [user_id]}
                  state_ttl: 1d
                - name: cc
                  input: c
                  aggregate: {group_by: [count]}
                """), "input", "has a state_ttl"),
            (configError(nodes: """
                - name: c
                  aggregate: {group_by: [user_id, event_type]}
                - name: cc
                  input: c
                  aggregate: {group_by: [user_id]}
                  state_ttl: 1d
                """), "state_ttl", "take old values back"),
            (configError(nodes: """
                - name: pairs
                  pairs: {group_by: [user_id], item: item_id, last: 4}
                - name: co
                  input: pairs
                  decay:
                    group_by: [item_id, other_item]
                    half_life: 1h
                    weights: {field: event_type, values: {view: 1}}
                    top_k: {k: 5}
                  state_ttl: 1d
                """), "state_ttl", "top_k"),
            (configError(nodes: """
                - name: c
                  aggregate: {group_by: [user_id]}
                  state_ttl: 0s
                """), "state_ttl", "positive"),
        ])
    }
}
