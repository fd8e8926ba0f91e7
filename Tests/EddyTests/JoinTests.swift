import EddyConfig
import EddyStreams
import EddyTestSupport
import Foundation
import XCTest

/// Stream–table joins in the topology test driver, against a reference written plainly here:
/// a dictionary for the catalog, changed between records exactly where the test changes the
/// table, and sums over the events.
final class JoinTests: XCTestCase {
    private static let base: Int64 = 1_767_225_600_000

    private func event(_ user: String, _ item: String, _ type: String, price: Double, ts: Int64, category: String? = nil) -> String {
        let own = category.map { #","category":"\#($0)""# } ?? ""
        return #"{"user_id":"\#(user)","item_id":"\#(item)","event_type":"\#(type)","price":\#(price),"ts":\#(ts)\#(own)}"#
    }

    private func catalogRow(category: String, margin: Double) -> String { #"{"category":"\#(category)","margin":\#(margin),"name":"x"}"# }

    /// Per (user, category): count and summed margin of the joined events; per category: a
    /// re-keyed count (the repartition path after a join).
    private func topology(missing: Topology.Join.MissingRow = .drop) -> Topology {
        Topology(
            application: "join-test",
            source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
            nodes: [
                .init(name: "enriched", input: nil, operation: .join(.init(table: "catalog", on: "item_id", fields: ["category", "margin"], missing: missing))),
                .init(name: "per_user_category", input: "enriched", operation: .aggregate(groupBy: ["user_id", "category"], sum: ["margin"]),
                      sinks: [.init(kind: .hash, key: "uc:{user_id}:{category}")]),
                .init(name: "per_category", input: "enriched", operation: .aggregate(groupBy: ["category"], sum: []),
                      sinks: [.init(kind: .string, key: "cat:{category}")]),
            ],
            tables: [.init(name: "catalog", topic: "items")])
    }

    func testJoinedFieldsMatchTheCatalogAsItWasWhenEachRecordWasProcessedAcrossUpdatesAndDeletes() throws {
        let driver = try TopologyTestDriver(topology(), partitions: 3)
        var catalog: [String: (category: String, margin: Double)] = [:]  // the reference table
        func setRow(_ item: String, _ category: String, _ margin: Double) throws {
            catalog[item] = (category, margin)
            try driver.pipeTable("catalog", key: item, value: catalogRow(category: category, margin: margin))
        }
        func deleteRow(_ item: String) throws {
            catalog[item] = nil
            try driver.pipeTable("catalog", key: item, value: nil)
        }
        for i in 0..<20 { try setRow("i\(i)", "c\(i % 4)", Double(i) / 4) }
        var perUserCategory: [String: (count: Int, margin: Double)] = [:]
        var perCategory: [String: Int] = [:]
        var random = TestRandom(seed: 7)
        for n in 0..<3000 {
            // The table changes while records flow: moves between categories, deletes, re-adds.
            if n % 100 == 50 { try setRow("i\(random.below(25))", "c\(random.below(5))", Double(random.below(40)) / 8) }
            if n % 250 == 0 { try deleteRow("i\(random.below(20))") }
            let user = "u\(random.below(30))", item = "i\(random.below(25))"
            // Some events carry a category of their own: the table's must win.
            try driver.pipe(event(user, item, "view", price: 1, ts: Self.base + Int64(n) * 1000, category: n % 7 == 0 ? "stale" : nil))
            if let row = catalog[item] {
                perUserCategory["uc:\(user):\(row.category)", default: (0, 0)].count += 1
                perUserCategory["uc:\(user):\(row.category)", default: (0, 0)].margin += row.margin
                perCategory["cat:\(row.category)", default: 0] += 1
            }
            if n % 400 == 399 { try driver.commit() }
        }
        try driver.commit()
        var expected: [String: TestRedisValue] = [:]
        for (key, v) in perUserCategory { expected[key] = .hash(["count": "\(v.count)", "sum_margin": "\(v.margin)"]) }
        for (key, count) in perCategory { expected[key] = .string("\(count)") }
        XCTAssertEqual(Set(driver.redis.keys), Set(expected.keys))
        for (key, value) in expected {
            guard case .hash(let want) = value, case .hash(let got)? = driver.redis[key] else {
                XCTAssertEqual(driver.redis[key], value, key)
                continue
            }
            XCTAssertEqual(got["count"], want["count"], key)
            XCTAssertEqual(Double(got["sum_margin"] ?? "") ?? -1, Double(want["sum_margin"]!)!, accuracy: 1e-9, key)
        }
        XCTAssertTrue(driver.deadLetters.isEmpty, "\(driver.deadLetters.prefix(3))")
    }

    func testMissingRowsAreDroppedPassedWithNullsOrDeadLetteredAsConfigured() throws {
        func run(_ missing: Topology.Join.MissingRow) throws -> TopologyTestDriver {
            let topology = Topology(
                application: "join-missing",
                source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
                nodes: [
                    .init(name: "enriched", input: nil, operation: .join(.init(table: "catalog", on: "item_id", fields: ["category"], missing: missing))),
                    .init(name: "per_user", input: "enriched", operation: .aggregate(groupBy: ["user_id"], sum: []),
                          sinks: [.init(kind: .string, key: "u:{user_id}")]),
                ],
                tables: [.init(name: "catalog", topic: "items")])
            let driver = try TopologyTestDriver(topology)
            try driver.pipeTable("catalog", key: "known", value: #"{"category":"c"}"#)
            try driver.pipe(event("u1", "known", "view", price: 1, ts: Self.base))
            try driver.pipe(event("u1", "unknown", "view", price: 1, ts: Self.base + 1))
            try driver.pipe(#"{"user_id":"u1","ts":\#(Self.base + 2)}"#)  // no item_id at all
            try driver.commit()
            return driver
        }
        let dropped = try run(.drop)
        XCTAssertEqual(dropped.redis["u:u1"], .string("1"))
        XCTAssertTrue(dropped.deadLetters.isEmpty)
        let passed = try run(.null)
        XCTAssertEqual(passed.redis["u:u1"], .string("3"))
        XCTAssertTrue(passed.deadLetters.isEmpty)
        let deadLettered = try run(.deadLetter)
        XCTAssertEqual(deadLettered.redis["u:u1"], .string("1"))
        XCTAssertEqual(deadLettered.deadLetters.map(\.reason), ["missing_row", "missing_row"])
        XCTAssertTrue(deadLettered.deadLetters[0].value.contains(#""item_id":"unknown""#), "the source record, untouched")
    }

    func testJoinedFieldsDownstreamNeedsAreCheckedOnTheJoinedRecordNotOnTheSource() throws {
        // Grouped by the joined category and summing the joined margin: the source records
        // have neither, and must not be dead-lettered for it; rows that lack them or give a
        // margin that is not a number are.
        let driver = try TopologyTestDriver(topology())
        try driver.pipeTable("catalog", key: "good", value: catalogRow(category: "c", margin: 2))
        try driver.pipeTable("catalog", key: "no-category", value: #"{"margin":1}"#)
        try driver.pipeTable("catalog", key: "text-margin", value: #"{"category":"c","margin":"high"}"#)
        try driver.pipeTable("catalog", key: "not-json", value: "{")
        try driver.pipeTable("catalog", key: "not-json", value: nil)  // deleting an invalid row's key: no row either way
        XCTAssertEqual(driver.invalidTableRecords, 1)
        try driver.pipe(event("u1", "good", "view", price: 1, ts: Self.base))
        try driver.pipe(event("u1", "no-category", "view", price: 1, ts: Self.base + 1))
        try driver.pipe(event("u1", "text-margin", "view", price: 1, ts: Self.base + 2))
        try driver.pipe(event("u1", "not-json", "view", price: 1, ts: Self.base + 3))
        try driver.commit()
        XCTAssertEqual(driver.redis["uc:u1:c"], .hash(["count": "1", "sum_margin": "2"]))
        XCTAssertEqual(driver.deadLetters.map(\.reason), ["missing_field", "wrong_type"])
    }

    func testAnInvalidTableRecordKeepsTheRowItWouldHaveReplaced() throws {
        let driver = try TopologyTestDriver(topology())
        try driver.pipeTable("catalog", key: "i1", value: catalogRow(category: "c1", margin: 1))
        try driver.pipeTable("catalog", key: "i1", value: "not json")
        try driver.pipe(event("u1", "i1", "view", price: 1, ts: Self.base))
        try driver.commit()
        XCTAssertEqual(driver.invalidTableRecords, 1)
        XCTAssertEqual(driver.redis["cat:c1"], .string("1"))
    }

    func testTheTopologyFileDeclaresTablesAndJoins() throws {
        let text = """
        application: enrich
        source: {topic: clicks, key: user_id, timestamp: ts}
        tables:
          catalog: {topic: items}
        nodes:
          - name: enriched
            join: {table: catalog, on: item_id, fields: [category, price], missing: dead_letter}
          - name: per_category
            input: enriched
            aggregate: {group_by: [category]}
            to_redis: {type: string, key: "cat:{category}"}
        """
        let topology = try TopologyFile.parse(text, file: "enrich.yaml")
        XCTAssertEqual(topology.tables, [.init(name: "catalog", topic: "items")])
        XCTAssertEqual(topology.nodes[0].operation, .join(.init(table: "catalog", on: "item_id", fields: ["category", "price"], missing: .deadLetter)))
        let text2 = topology.describe(.text)
        XCTAssertTrue(text2.contains("table catalog: topic items"), text2)
        XCTAssertTrue(text2.contains("join table catalog on item_id: adds [category, price], missing row: dead_letter"), text2)
        XCTAssertTrue(topology.describe(.mermaid).contains("table_catalog --> enriched"))
        XCTAssertTrue(topology.describe(.dot).contains(#""table_catalog" -> "enriched";"#))
    }

    func testBadJoinsAndTablesNameTheirLineAndField() {
        func error(_ nodes: String, tables: String = "tables:\n  catalog: {topic: items}\n") -> String { configError(nodes: nodes, tables: tables) }
        let cases: [(String, String, String)] = [
            (error("  - name: j\n    join: {table: nope, on: item_id, fields: [category]}\n"), "nodes[0].join.table", "unknown table 'nope' (declare it under 'tables:'; known: catalog)"),
            (error("  - name: j\n    join: {table: catalog, on: item_id, fields: [user_id]}\n"), "nodes[0].join.fields[0]", "is the source's key; a join must not replace it"),
            (error("  - name: j\n    join: {table: catalog, on: item_id, fields: []}\n"), "nodes[0].join.fields", "lists no fields"),
            (error("  - name: j\n    join: {table: catalog, on: item_id, fields: [c], missing: maybe}\n"), "nodes[0].join.missing", "unknown value 'maybe' (expected drop, null, dead_letter)"),
            (error("  - name: j\n    join: {table: catalog, on: item_id}\n"), "nodes[0].join", "missing field 'fields'"),
            (error("  - name: s\n    session: {group_by: [user_id], gap: 30m}\n    to_redis: {type: hash, key: \"s:{session_id}\"}\n  - name: j\n    input: s\n    join: {table: catalog, on: last_item, fields: [category], missing: dead_letter}\n"),
             "nodes[1].join.missing", "are not source records (closed sessions, an aggregate's rows, or pairs)"),
            (error("  - name: j\n    join: {table: catalog, on: item_id, fields: [c]}\n", tables: "tables:\n  catalog: {topic: clicks}\n"), "tables.catalog.topic", "is the source topic"),
            (error("  - name: j\n    join: {table: catalog, on: item_id, fields: [c]}\n", tables: "tables:\n  catalog: {}\n"), "tables.catalog", "missing field 'topic'"),
        ]
        assertConfigErrors(cases)
    }

    // MARK: found in review

    func testAJoinOnOneBranchLeavesTheSourceChecksOfAnotherBranchAlone() throws {
        let topology = Topology(
            application: "join-branches",
            source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
            nodes: [
                .init(name: "enriched", input: nil, operation: .join(.init(table: "catalog", on: "item_id", fields: ["category", "price"]))),
                .init(name: "by_category", input: "enriched", operation: .aggregate(groupBy: ["category"], sum: ["price"]),
                      sinks: [.init(kind: .hash, key: "joined:{category}")]),
                .init(name: "raw_by_category", input: nil, operation: .aggregate(groupBy: ["category"], sum: ["price"]),
                      sinks: [.init(kind: .hash, key: "raw:{category}")]),
            ],
            tables: [.init(name: "catalog", topic: "items")])
        let driver = try TopologyTestDriver(topology)
        try driver.pipeTable("catalog", key: "i1", value: #"{"category":"c1","price":2}"#)
        try driver.pipe(#"{"user_id":"u1","item_id":"i1","ts":\#(Self.base)}"#)  // no category of its own
        try driver.pipe(#"{"user_id":"u1","item_id":"i1","category":"c1","price":"abc","ts":\#(Self.base)}"#)
        try driver.pipe(#"{"user_id":"u1","item_id":"i1","category":"c2","price":3,"ts":\#(Self.base)}"#)
        try driver.commit()
        XCTAssertEqual(driver.deadLetters.map(\.reason).sorted(), ["missing_field", "wrong_type"], "the raw branch checks the source record")
        XCTAssertEqual(driver.redis["raw:c2"], .hash(["count": "1", "sum_price": "3"]))
        XCTAssertNil(driver.redis["raw:"])
        // Only the third record reached the joined branch (the others were dead-lettered at the source).
        XCTAssertEqual(driver.redis["joined:c1"], .hash(["count": "1", "sum_price": "2"]))
    }

    func testAJoinBelowASessionDropsWhatItCannotUseInsteadOfDeadLetteringAnotherRecord() throws {
        let topology = Topology(
            application: "join-after-session",
            source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
            nodes: [
                .init(name: "sessions", input: nil, operation: .session(.init(groupBy: ["user_id"], gapMs: 60_000))),
                .init(name: "with_segment", input: "sessions", operation: .join(.init(table: "users", on: "user_id", fields: ["segment"], missing: .null))),
                .init(name: "per_segment", input: "with_segment", operation: .aggregate(groupBy: ["user_id", "segment"], sum: []),
                      sinks: [.init(kind: .hash, key: "seg:{user_id}:{segment}")]),
            ],
            tables: [.init(name: "users", topic: "users")])
        let driver = try TopologyTestDriver(topology)
        try driver.pipeTable("users", key: "u1", value: #"{"name":"no segment"}"#)
        try driver.pipeTable("users", key: "u2", value: #"{"segment":"gold"}"#)
        for (user, ts) in [("u1", Self.base), ("u2", Self.base), ("u1", Self.base + 3_600_000)] {
            try driver.pipe(#"{"user_id":"\#(user)","ts":\#(ts)}"#)
        }
        try driver.commit()
        XCTAssertTrue(driver.deadLetters.isEmpty, "\(driver.deadLetters)")
        XCTAssertEqual(driver.redis["seg:u2:gold"], .hash(["count": "1"]))
        XCTAssertEqual(driver.redis.keys.filter { $0.hasPrefix("seg:u1") }, [])
    }

    func testJoinedRecordsKeepOneOccurrenceOfEachFieldHoweverTheRecordIsWritten() throws {
        let topology = Topology(
            application: "join-json",
            source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
            nodes: [.init(name: "enriched", input: nil, operation: .join(.init(table: "catalog", on: "item_id", fields: ["category", "price"])),
                          topicSinks: [.init(topic: "enriched-out")])],
            tables: [.init(name: "catalog", topic: "items")])
        let driver = try TopologyTestDriver(topology)
        try driver.pipeTable("catalog", key: "i1", value: #"{"category":"new","price":1}"#)
        let inputs = [
            #"{"category":"old","user_id":"u1","item_id":"i1","ts":1}"#,                  // first member
            #"{"category":"old", "price" : 5 ,"user_id":"u1","item_id":"i1","ts":1}"#,    // the first two
            #"{"user_id":"u1","item_id":"i1","ts":1,"price":5}"#,                         // the last
            #"{ "user_id":"u1", "category" : "o\"ld" , "item_id":"i1", "ts":1 }  "#,       // spaces, an escaped quote
            #"{"user_id":"u1","item_id":"i1","ts":1,"nested":{"category":"x"}}"#,         // a nested field of that name stays
        ]
        for input in inputs { try driver.pipe(input) }
        try driver.commit()
        let written = driver.topicRecords("enriched-out").map(\.value)
        XCTAssertEqual(written.count, inputs.count)
        for (i, (value, input)) in zip(written, inputs).enumerated() {
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any], value)
            XCTAssertEqual(value.components(separatedBy: #""category":"#).count - 1, i == 4 ? 2 : 1, value)
            XCTAssertEqual(value.components(separatedBy: #""price":"#).count - 1, 1, value)
            XCTAssertEqual(json["category"] as? String, "new", value)
            XCTAssertEqual(json["price"] as? Int, 1, value)
            XCTAssertEqual(json["user_id"] as? String, "u1", input)
        }
        XCTAssertTrue(written[4].contains(#""nested":{"category":"x"}"#), written[4])
    }

    func testAFieldNameThatNeedsEscapingGivesValidRecords() throws {
        let topology = Topology(
            application: "join-quote",
            source: .init(topic: "clicks", keyField: "user_id", timestampField: "ts"),
            nodes: [.init(name: "enriched", input: nil, operation: .join(.init(table: "catalog", on: "item_id", fields: ["a\"b"], missing: .null)),
                          topicSinks: [.init(topic: "out", fields: ["user_id", "a\"b"])])],
            tables: [.init(name: "catalog", topic: "items")])
        let driver = try TopologyTestDriver(topology)
        try driver.pipeTable("catalog", key: "i1", value: #"{"a\"b":1}"#)
        try driver.pipe(#"{"user_id":"u1","item_id":"i1","ts":\#(Self.base)}"#)
        try driver.commit()
        let values = driver.topicRecords("out").map(\.value)
        XCTAssertEqual(values, [#"{"user_id":"u1","a\"b":1}"#])
    }
}
