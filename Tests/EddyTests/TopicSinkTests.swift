import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// Output topics (`to_topic`) in the topology test driver: closed sessions against the
/// brute-force `SessionReference`, raw records against the input, and the `eddy.id` of each
/// record, which must be the same when a record is processed again after a lost commit.
final class TopicSinkTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000

    private func click(_ user: String, _ time: Int64, _ type: String = "view", price: Double? = nil) -> String {
        "{\"user_id\":\"\(user)\",\"ts\":\(time),\"event_type\":\"\(type)\",\"item_id\":\"i\(time % 7)\",\"category\":\"c\(time % 3)\"" +
            (price.map { ",\"price\":\($0)" } ?? "") + "}"
    }

    func testClosedSessionsAreWrittenOnceEachWithTheReferencesFeatures() throws {
        let builder = StreamsBuilder(application: "sessions-out")
        builder.stream(topic: "clicks", key: "user_id", timestamp: "ts")
            .session("sessions", groupBy: ["user_id"], gap: .seconds(60), grace: .seconds(10))
            .toStream()
            .toTopic(.init(topic: "closed-sessions", key: "{user_id}", fields: ["session_id", "start", "end", "events", "purchase_value", "top_category"]))
        let driver = try TopologyTestDriver(try builder.build(), partitions: 2)
        var references = [SessionReference(gapMs: 60_000, graceMs: 10_000), SessionReference(gapMs: 60_000, graceMs: 10_000)]
        var random = TestRandom(seed: 3)
        var time = Self.base
        for n in 0..<4000 {
            time += Int64(random.below(9000))
            let user = "u\(random.below(12))", type = ["view", "click", "purchase"][random.below(3)]
            let price = type == "purchase" ? Double(random.below(5000)) / 100 : nil
            // Each user's records go to one partition; the reference follows each partition.
            let partition = Int32(Int(user.dropFirst())! % 2)
            try driver.pipe(click(user, time, type, price: price), partition: partition)
            references[Int(partition)].add(RefEvent(key: user, time: time, eventType: type, item: "i\(time % 7)", category: "c\(time % 3)", price: price))
            if n % 500 == 499 { try driver.commit() }
        }
        try driver.commit()
        let written = driver.topicRecords("closed-sessions")
        let expected = references.flatMap(\.closed)
        XCTAssertGreaterThan(expected.count, 200)
        XCTAssertEqual(written.count, expected.count, "one record per closed session")
        var byID: [String: [String: Any]] = [:]
        for r in written {
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.value.utf8)) as? [String: Any], r.value)
            let id = try XCTUnwrap(json["session_id"] as? String)
            XCTAssertNil(byID[id], "session \(id) written twice")
            byID[id] = json
            XCTAssertEqual(r.key, String(id.split(separator: ":")[0]))
        }
        for s in expected {
            guard let json = byID[s.id] else { XCTFail("session \(s.id) not written"); continue }
            XCTAssertEqual(json["start"] as? Int64, s.start, s.id)
            XCTAssertEqual(json["end"] as? Int64, s.end, s.id)
            XCTAssertEqual(json["events"] as? Int, s.events, s.id)
            XCTAssertEqual(json["purchase_value"] as? Double ?? -1, s.purchaseValue, accuracy: 1e-9, s.id)
            XCTAssertEqual(json["top_category"] as? String, s.topCategory, s.id)
        }
    }

    func testRawRecordsAreWrittenUnchangedWithIdsThatAreTheSameWhenReprocessed() throws {
        let topology = Topology(
            application: "purchases-out",
            source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
            nodes: [.init(name: "purchases", input: nil, operation: .filter(field: "event_type", .equals("purchase")),
                          topicSinks: [.init(topic: "purchases")])])
        let driver = try TopologyTestDriver(topology)
        let records = (0..<30).map { i in click("u\(i % 4)", Self.base + Int64(i), i % 3 == 0 ? "purchase" : "view", price: 1) }
        try driver.pipe(Array(records[0..<20]))
        try driver.commit()
        // Ten more, then a crash before their commit: they are processed again afterwards.
        try driver.pipe(Array(records[20...]))
        try driver.restart()
        try driver.pipe(Array(records[20...]))
        try driver.commit()
        let written = driver.topicRecords("purchases")
        let expected = records.enumerated().filter { $0.offset % 3 == 0 }
        XCTAssertEqual(written.map(\.value), expected.map(\.element), "the purchases, unchanged, once each")
        XCTAssertEqual(written.map(\.id), expected.map { "clicks/0/\($0.offset)/0" })
        XCTAssertEqual(Set(written.map(\.key)), [nil])
    }

    func testTheTopologyFileWritesTopicsAndRejectsBadOnes() throws {
        let text = """
        application: out
        source: {topic: clicks, key: user_id, timestamp: ts}
        nodes:
          - name: carts
            filter: {field: event_type, equals: cart}
            to_topic: {topic: carts, key: "{user_id}", fields: [user_id, item_id, price]}
        """
        let topology = try TopologyFile.parse(text, file: "out.yaml")
        XCTAssertEqual(topology.nodes[0].topicSinks, [.init(topic: "carts", key: "{user_id}", fields: ["user_id", "item_id", "price"])])
        XCTAssertTrue(topology.describe().contains("-> topic carts, key {user_id}, fields [user_id, item_id, price]"), topology.describe())
        XCTAssertTrue(topology.describe(.mermaid).contains("carts_topic0[\"topic carts\"]"))
        let driver = try TopologyTestDriver(topology)
        try driver.pipe(#"{"user_id":"u1","ts":1,"event_type":"cart","item_id":"i\"9","price":2.50,"extra":true}"#)
        try driver.commit()
        XCTAssertEqual(driver.topicRecords("carts").map(\.value), [#"{"user_id":"u1","item_id":"i\"9","price":2.50}"#])
        XCTAssertEqual(driver.topicRecords("carts").map(\.key), ["u1"])

        func error(_ node: String) -> String { configError(nodes: node) }
        let cases: [(String, String, String)] = [
            (error("  - name: a\n    aggregate: {group_by: [user_id]}\n    to_topic: {topic: counts}\n"), "nodes[0].to_topic[0]", "an aggregate forwards no records"),
            (error("  - name: a\n    filter: {field: x, exists: true}\n    to_topic: {topic: clicks}\n"), "nodes[0].to_topic[0].topic", "is the source topic"),
            (error("  - name: a\n    project: [user_id]\n    to_topic: {topic: o, fields: [price]}\n"), "nodes[0].to_topic[0].fields[0]", "field 'price' is not available here (available: user_id)"),
            (error("  - name: a\n    to_topic: {key: \"{user_id}\"}\n"), "nodes[0].to_topic", "missing field 'topic'"),
            (error("  - name: a\n    to_topic: {topic: a-x-changelog}\n"), "nodes[0].to_topic[0].topic", "named like one of Eddy's internal topics"),
            (error("  - name: a\n    to_topic: {topic: __consumer_offsets}\n"), "nodes[0].to_topic[0].topic", "one of the broker's internal topics"),
            (error("  - name: a\n    to_topic: {topic: o, fields: [user_id, user_id]}\n"), "nodes[0].to_topic[0].fields[1]", "'user_id' is listed twice"),
        ]
        assertConfigErrors(cases)
    }

    /// The n of an id counts one topic's records: a node writing another topic (here one
    /// whose output depends on the table) cannot shift it.
    func testTheIdsOfATopicDoNotDependOnWhatOtherTopicsGet() throws {
        func ids(withRow: Bool) throws -> [String] {
            let topology = Topology(
                application: "ids",
                source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
                nodes: [
                    .init(name: "enriched", input: nil, operation: .join(.init(table: "catalog", on: "item_id", fields: ["category"])),
                          topicSinks: [.init(topic: "enriched-out")]),
                    .init(name: "all", input: nil, operation: .passthrough, topicSinks: [.init(topic: "all-out"), .init(topic: "all-out")]),
                ],
                tables: [.init(name: "catalog", topic: "items")])
            let driver = try TopologyTestDriver(topology)
            if withRow { try driver.pipeTable("catalog", key: "i1", value: #"{"category":"c1"}"#) }
            try driver.pipe(#"{"user_id":"u1","item_id":"i1","ts":\#(Self.base)}"#)
            try driver.commit()
            return driver.topicRecords("all-out").map(\.id)
        }
        XCTAssertEqual(try ids(withRow: false), ["clicks/0/0/0", "clicks/0/0/1"])
        XCTAssertEqual(try ids(withRow: true), ["clicks/0/0/0", "clicks/0/0/1"])
    }
}
