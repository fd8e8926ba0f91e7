import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// Topologies split into sub-topologies at re-key points, in the test driver: records (not
/// only partials) crossing a repartition topic to a session window grouped by a field that
/// is not the source key, closed sessions re-keyed again into an aggregate, and an
/// aggregate of a re-keyed aggregate's rows — each against a brute-force reference that
/// models, plainly, which downstream task gets which record in which order.
final class SubtopologyTests: XCTestCase {
    private static let partitions = 4
    private static let gap: Int64 = 600_000, grace: Int64 = 86_400_000

    /// Source keyed by user; visits are sessions per device (a device is shared by users,
    /// so a device's records come from several source partitions); closed visits are
    /// counted per top category (a second re-key), and written to an output topic.
    private static let visitsTopology = """
        application: a
        source: {topic: clicks, key: user_id, timestamp: ts}
        nodes:
          - name: visits
            session: {group_by: [device_id], gap: 10m, grace: 1d}
            to_redis: {type: hash, key: "visit:{session_id}"}
            to_topic: {topic: visits-closed, key: "{device_id}", fields: [session_id, events]}
          - name: by_category
            input: visits
            aggregate: {group_by: [top_category], sum: [events]}
            to_redis: {type: hash, key: "category:{top_category}"}
        """

    private struct Event {
        let user: Int, device: Int, time: Int64, type: String, item: String, category: String, price: Int?

        var json: String {
            "{\"user_id\":\"u\(user)\",\"device_id\":\"d\(device)\",\"ts\":\(time),\"event_type\":\"\(type)\",\"item_id\":\"\(item)\",\"category\":\"\(category)\""
                + (price.map { ",\"price\":\($0)" } ?? "") + "}"
        }
        var ref: RefEvent { RefEvent(key: "d\(device)", time: time, eventType: type, item: item, category: category, price: price.map(Double.init)) }
    }

    private static func downstreamPartition(of values: [String]) -> Int {
        repartitionPartition(of: values, partitions: partitions)
    }

    private func events(_ count: Int, seed: UInt64) -> [Event] {
        var random = TestRandom(seed: seed)
        var time: Int64 = 1_767_225_600_000
        return (0..<count).map { _ in
            time += Int64(1 + random.below(120_000))  // unique times: no ties anywhere
            let type = ["view", "view", "click", "cart", "purchase"][random.below(5)]
            return Event(user: random.below(40), device: random.below(12), time: time, type: type, item: "i\(random.below(25))",
                         category: "c\(random.below(4))", price: type == "cart" || type == "purchase" ? 1 + random.below(99) : nil)
        }
    }

    /// Pipes `events` into the partition of their user (user mod partitions), committing
    /// every `commitEvery`; optionally a crash (restart, or a lost disk) right after a commit.
    private func run(_ events: [Event], commitEvery: Int, restartAfterCommit: Int? = nil, emptyDisk: Bool = false) throws -> TopologyTestDriver {
        let driver = try TopologyTestDriver(try TopologyFile.parse(Self.visitsTopology, file: "visits.yaml"), partitions: Self.partitions)
        for (i, e) in events.enumerated() {
            try driver.pipe(e.json, partition: Int32(e.user % Self.partitions))
            if i % commitEvery == commitEvery - 1 {
                try driver.commit()
                if i / commitEvery == restartAfterCommit { try emptyDisk ? driver.restartOnEmptyDisk() : driver.restart() }
            }
        }
        try driver.commit()
        return driver
    }

    /// The reference: each source partition (user mod partitions) is in event-time order.
    private func reference(_ events: [Event]) -> ReKeyedSessionReference {
        var sessions = ReKeyedSessionReference(sourcePartitions: Self.partitions, downstreamPartitions: Self.partitions, gapMs: Self.gap, graceMs: Self.grace)
        for e in events { sessions.add(e.ref, sourcePartition: e.user % Self.partitions) }
        return sessions
    }

    private func expectedRedis(_ sessions: ReKeyedSessionReference) -> [String: TestRedisValue] {
        var redis: [String: TestRedisValue] = [:]
        for s in sessions.open { redis["visit:\(s.id)"] = .hash(s.redisFields) }
        var byCategory: [String: (count: Int, events: Int)] = [:]
        for s in sessions.closed {
            byCategory[s.topCategory, default: (0, 0)].count += 1
            byCategory[s.topCategory]!.events += s.events
        }
        for (category, c) in byCategory { redis["category:\(category)"] = .hash(["count": "\(c.count)", "sum_events": "\(c.events)"]) }
        return redis
    }

    func testSessionsGroupedByAnotherFieldThanTheSourceKeyAreReKeyedAndMatchTheReference() throws {
        let events = events(3_000, seed: 5)
        let sessions = reference(events)
        XCTAssertGreaterThan(sessions.closed.count, 100, "many sessions close")
        XCTAssertEqual(sessions.late, [])
        let driver = try run(events, commitEvery: 53)
        XCTAssertEqual(driver.redis.filter { !$0.key.hasPrefix("eddy:") }, expectedRedis(sessions))
        // Every device's sessions come from several users, hence several source partitions.
        let partitionsPerDevice = Dictionary(grouping: events, by: \.device).mapValues { Set($0.map { $0.user % Self.partitions }).count }
        XCTAssertTrue(partitionsPerDevice.values.allSatisfy { $0 > 1 })
    }

    func testClosedSessionsOfAReKeyedWindowReachTheOutputTopicOnceEachWithIdsOfTheirTask() throws {
        let events = events(2_000, seed: 6)
        let sessions = reference(events)
        let driver = try run(events, commitEvery: 41)
        let written = driver.topicRecords("visits-closed")
        let expected = sessions.closed.map { "{\"session_id\":\"\($0.id)\",\"events\":\($0.events)}" }
        XCTAssertEqual(written.map(\.value).sorted(), expected.sorted())
        XCTAssertEqual(Set(written.map(\.id)).count, written.count, "ids are unique")
        for r in written {
            // <repartition topic>/<partition>/<offset>/<n>: the downstream task's input.
            let parts = r.id.split(separator: "/")
            XCTAssertEqual(parts.first, "a-visits-repartition")
            XCTAssertEqual(Int(parts[1]), Self.downstreamPartition(of: [r.key!]), r.id)
        }
    }

    func testReKeyedSessionsSurviveACrashAndALostDisk() throws {
        let events = events(2_000, seed: 7)
        let expected = expectedRedis(reference(events))
        for emptyDisk in [false, true] {
            let driver = try run(events, commitEvery: 29, restartAfterCommit: 30, emptyDisk: emptyDisk)
            XCTAssertEqual(driver.redis.filter { !$0.key.hasPrefix("eddy:") }, expected, emptyDisk ? "lost disk" : "restart")
        }
    }

    /// Quantities summed per item (re-keyed by item), then items per total (re-keyed again
    /// by the total): every event moves an item from one total to another, so the second
    /// hop takes rows back; a total no item has any more leaves Redis.
    func testAnAggregateOfAReKeyedAggregateTakesRowsBackAcrossTwoRepartitions() throws {
        let topology = try TopologyFile.parse("""
            application: h
            source: {topic: clicks, key: user_id, timestamp: ts}
            nodes:
              - name: per_item
                aggregate: {group_by: [item_id], sum: [qty]}
              - name: items_per_total
                input: per_item
                aggregate: {group_by: [sum_qty]}
                to_redis: {type: zset, key: "items_per_total", member: "{sum_qty}", score: count}
            """, file: "h.yaml")
        let driver = try TopologyTestDriver(topology, partitions: Self.partitions)
        var random = TestRandom(seed: 8)
        var perItem: [String: Int] = [:]
        for i in 0..<4_000 {
            let item = "i\(random.below(60))", qty = 1 + random.below(3)
            perItem[item, default: 0] += qty
            try driver.pipe("{\"user_id\":\"u\(random.below(50))\",\"item_id\":\"\(item)\",\"qty\":\(qty),\"ts\":\(1_767_225_600_000 + i)}")
            if i % 97 == 96 { try driver.commit() }
            if i == 2_000 { try driver.commit(); try driver.restartOnEmptyDisk() }
        }
        try driver.commit()
        var histogram: [String: Double] = [:]
        for total in perItem.values { histogram["\(total)", default: 0] += 1 }
        XCTAssertEqual(driver.redis["items_per_total"], .zset(histogram))
        XCTAssertGreaterThan(histogram.count, 20)
    }

    func testTheCompilerSplitsAtReKeyPointsAndRefusesJoinsThatReplaceTheKey() throws {
        // A join may not replace the field its stream is partitioned by after a re-key.
        let refused = configError(nodes: """
              - name: s
                session: {group_by: [device_id], gap: 1m}
              - name: j
                input: s
                join: {table: t, on: top_category, fields: [device_id]}
            """, tables: "tables:\n  t: {topic: items}\n")
        XCTAssertTrue(refused.contains("nodes[1].join.fields[0]") && refused.contains("is the key the stream is partitioned by here"), refused)
        let reserved = configError(nodes: "  - name: source\n    session: {group_by: [device_id], gap: 1m}\n")
        XCTAssertTrue(reserved.contains("nodes[0].name") && reserved.contains("names the topic that re-keys source records"), reserved)
        // Pairs grouped by a session re-key too (they used to be refused).
        XCTAssertEqual(configError(nodes: "  - name: p\n    pairs: {group_by: [session_id]}\n"), "no error")
    }

    func testDescribeDrawsEachSubtopologyWithTheRepartitionTopicsBetweenThem() throws {
        let topology = try TopologyFile.parse(Self.visitsTopology, file: "visits.yaml")
        let lines = topology.describe(.text).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        func line(_ prefix: String) -> Int? { lines.firstIndex { $0.hasPrefix(prefix) } }
        XCTAssertEqual(lines.filter { $0.hasPrefix("sub-topology") }, [
            "sub-topology 0: a task per partition of clicks (keyed by user_id)",
            "sub-topology 1: a task per partition of a-visits-repartition (keyed by device_id), records re-keyed by sub-topology 0",
            "sub-topology 2: a task per partition of a-by_category-repartition (keyed by top_category), partials combined by sub-topology 1",
        ], lines.joined(separator: "\n"))
        let visits = try XCTUnwrap(line("visits <- source"))
        XCTAssertTrue(lines[visits].hasSuffix("re-keyed through a-visits-repartition (its records)"), lines[visits])
        XCTAssertTrue((line("sub-topology 1")!..<line("sub-topology 2")!).contains(visits))
        XCTAssertGreaterThan(try XCTUnwrap(line("by_category <- visits")), line("sub-topology 2")!)

        let mermaid = topology.describe(.mermaid)
        for expected in ["subgraph sub1[\"sub-topology 1:", "  visits[\"visits", "source -->|a-visits-repartition| visits",
                         "visits -->|a-by_category-repartition| by_category", "visits --> visits_topic0"] {
            XCTAssertTrue(mermaid.contains(expected), "\(expected) in\n\(mermaid)")
        }
        XCTAssertEqual(mermaid.components(separatedBy: "\n  end").count - 1, 3, "three subgraphs closed")
        let dot = topology.describe(.dot)
        for expected in ["subgraph cluster_2 {", #""source" -> "visits" [label="a-visits-repartition"];"#, #""visits" -> "visits_topic0";"#] {
            XCTAssertTrue(dot.contains(expected), "\(expected) in\n\(dot)")
        }
    }

}
