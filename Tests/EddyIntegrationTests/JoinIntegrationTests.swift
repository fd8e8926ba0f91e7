import EddyKafka
import EddyRedis
import EddyTestSupport
import Foundation
import XCTest

/// A stream–table join against the real broker and Redis: a compacted catalog topic read as
/// a global table by a running `eddy run` with two stream threads, rows updated and deleted
/// while it runs, and every event's join checked through per-(user, category) counts and
/// per-category counts (re-keyed) against a reference computed here with a plain
/// dictionary for the catalog.
final class JoinIntegrationTests: XCTestCase {
    private static let partitions = 4
    private static let base: Int64 = 1_767_225_600_000

    /// The reference: what Redis must hold.
    private var perUserCategory: [String: (count: Int, margin: Double)] = [:]
    private var perCategory: [String: Int] = [:]
    private var missingRows = 0
    /// The enriched records the output topic must hold, as JSON, with their keys.
    private var enriched: [String] = []
    private var catalog: [String: (category: String, margin: Double)] = [:]
    private var sent = 0

    func testEventsJoinTheCatalogAsItChangesWhileTheStreamRuns() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let admin = try KafkaAdmin(config: services.kafkaConfig)
        try admin.createTopic("clicks-join", partitions: Self.partitions)
        try admin.createTopic("catalog-join", partitions: 2, configs: ["cleanup.policy": "compact"])
        let producer = try KafkaProducer(config: services.kafkaConfig)
        func setRow(_ item: String, _ category: String, _ margin: Double) throws {
            catalog[item] = (category, margin)
            try producer.send(topic: "catalog-join", key: Array(item.utf8), value: Array(#"{"category":"\#(category)","margin":\#(margin),"in_stock":true}"#.utf8))
        }
        func deleteRow(_ item: String) throws {
            catalog[item] = nil
            try producer.send(topic: "catalog-join", key: Array(item.utf8), value: nil, headers: [])
        }
        var random = TestRandom(seed: 11)
        /// Events on 300 items, of which the catalog knows 0..<250: the rest are missing rows.
        func produceEvents(_ count: Int) throws {
            for _ in 0..<count {
                let user = "u\(random.below(200))", item = "i\(random.below(300))"
                let json = #"{"user_id":"\#(user)","item_id":"\#(item)","event_type":"view","ts":\#(Self.base + Int64(sent) * 100)}"#
                sent += 1
                try producer.send(topic: "clicks-join", key: Array(user.utf8), value: Array(json.utf8))
                if let row = catalog[item] {
                    perUserCategory["uc:\(user):\(row.category)", default: (0, 0)].count += 1
                    perUserCategory["uc:\(user):\(row.category)", default: (0, 0)].margin += row.margin
                    perCategory["cat:\(row.category)", default: 0] += 1
                    enriched.append(#"\#(item) {"user_id":"\#(user)","item_id":"\#(item)","category":"\#(row.category)","margin":\#(row.margin)}"#)
                } else {
                    missingRows += 1
                }
            }
            try producer.flush()
        }

        for i in 0..<250 { try setRow("i\(i)", "c\(i % 6)", Double(i % 10) / 4) }
        try producer.flush()
        let topology = services.workDir.appendingPathComponent("join-topology.yaml").path
        try """
            application: join-it
            source: {topic: clicks-join, key: user_id, timestamp: ts}
            tables:
              catalog: {topic: catalog-join}
            nodes:
              - name: enriched
                join: {table: catalog, on: item_id, fields: [category, margin], missing: dead_letter}
                to_topic: {topic: clicks-enriched, key: "{item_id}", fields: [user_id, item_id, category, margin]}
              - name: per_user_category
                input: enriched
                aggregate: {group_by: [user_id, category], sum: [margin]}
                to_redis: {type: hash, key: "uc:{user_id}:{category}"}
              - name: per_category
                input: enriched
                aggregate: {group_by: [category]}
                to_redis: {type: string, key: "cat:{category}"}
            """.write(toFile: topology, atomically: true, encoding: .utf8)
        let config = try services.writeRuntimeConfig(name: "join", commitIntervalMs: 200, threads: 2)
        let metricsPort = try LocalServices.freePort()
        let run = try EddyCLI.start(["run", topology, "--config", config, "--metrics-port", "\(metricsPort)"])
        defer { if run.isRunning { run.signal(SIGKILL) } }
        let redis = try services.redis()

        try produceEvents(4000)
        try waitForRedis(redis, run: run, "the first events, joined with the first catalog")
        XCTAssertEqual(metric("eddy_table_rows{application=\"join-it\",table=\"catalog\"}", port: metricsPort), 250)

        // While it runs: 40 items move to another category or margin, 30 are deleted, 20 new
        // ones appear (of the items that were missing rows).
        var changes = 0
        for _ in 0..<40 { try setRow("i\(random.below(250))", "c\(random.below(8))", Double(random.below(20)) / 8); changes += 1 }
        for _ in 0..<30 { try deleteRow("i\(random.below(250))"); changes += 1 }
        for i in 250..<270 { try setRow("i\(i)", "c\(i % 3)", 1.5); changes += 1 }
        try producer.flush()
        // Both threads hold a copy of the table: wait until both applied every change.
        try waitUntil("both threads applied the \(changes) table changes", run: run) {
            (metric("eddy_table_updates_total{application=\"join-it\"}", port: metricsPort) ?? 0) >= 2 * changes
        }
        XCTAssertEqual(metric("eddy_table_rows{application=\"join-it\",table=\"catalog\"}", port: metricsPort), catalog.count)
        try produceEvents(4000)
        try waitForRedis(redis, run: run, "the later events, joined with the changed catalog")
        try waitUntil("every missing row dead-lettered", run: run) {
            metric("eddy_dead_letters_total{application=\"join-it\",reason=\"missing_row\"}", port: metricsPort) == missingRows
        }
        XCTAssertEqual(metric("eddy_join_misses_total{application=\"join-it\"}", port: metricsPort), missingRows)
        XCTAssertGreaterThan(missingRows, 500)
        print("join: \(sent) events, \(perUserCategory.count) (user, category) keys, \(missingRows) missing rows, \(changes) table changes while running")
        run.signal(SIGTERM)
        let end = try run.wait(timeout: 60)
        XCTAssertEqual(end.status, 0, String(end.stderr.suffix(3000)))
        XCTAssertTrue(end.stderr.contains("tables loaded"), String(end.stderr.suffix(3000)))
        // The output topic, read back by a plain read_committed consumer: exactly the
        // enriched events, each once (the margins as the catalog wrote them).
        let written = try readTopic("clicks-enriched", partitions: Self.partitions, services: services)
        XCTAssertEqual(written.map { "\($0.key ?? "nil") \($0.value)" }.sorted(), enriched.sorted())
        XCTAssertEqual(Set(written.compactMap(\.id)).count, written.count, "every eddy.id once")
    }

    /// Waits until Redis holds the reference exactly (keys, counts, sums), up to 60 s.
    private func waitForRedis(_ redis: RedisConnection, run: EddyCLI.Running, _ what: String) throws {
        var last: [String] = []
        do {
            try waitUntil(what, run: run) {
                last = (try? differences(redis)) ?? ["Redis not readable"]
                return last.isEmpty
            }
        } catch {
            XCTFail("\(error); first differences: \(last.prefix(10))")
            throw error
        }
    }

    private func differences(_ redis: RedisConnection) throws -> [String] {
        var out: [String] = []
        guard case .array(let ucKeys) = try redis.send("KEYS", "uc:*"), case .array(let catKeys) = try redis.send("KEYS", "cat:*") else {
            return ["KEYS failed"]
        }
        let actualKeys = Set((ucKeys + catKeys).compactMap(\.string))
        let expectedKeys = Set(perUserCategory.keys).union(perCategory.keys)
        for key in expectedKeys.subtracting(actualKeys).sorted().prefix(5) { out.append("missing \(key)") }
        for key in actualKeys.subtracting(expectedKeys).sorted().prefix(5) { out.append("unexpected \(key)") }
        for (key, want) in perUserCategory {
            let got = UserCountsReference.hash(try redis.send("HGETALL", key))
            let margin = Double(got["sum_margin"] ?? "") ?? -1
            if got["count"] != "\(want.count)" || abs(margin - want.margin) > 1e-9 * max(1, want.margin) {
                out.append("\(key): \(got), expected count \(want.count), sum_margin \(want.margin)")
            }
        }
        for (key, want) in perCategory {
            let got = try redis.send("GET", key).string
            if got != "\(want)" { out.append("\(key): \(got ?? "nil"), expected \(want)") }
        }
        return out
    }

    private func waitUntil(_ what: String, run: EddyCLI.Running, timeout: TimeInterval = 60, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            guard run.isRunning else { throw ServiceError("eddy stopped (\(run.ending)) before \(what):\n\(run.stderr.suffix(3000))") }
            usleep(200_000)
        }
        throw ServiceError("not within \(Int(timeout)) s: \(what)")
    }

    /// A sample's value from /metrics, by its name and labels as rendered.
    private func metric(_ sample: String, port: Int) -> Int? {
        guard let text = httpGet(port: port, path: "/metrics") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1)).map { Int($0) }
        }
        return nil
    }
}
