import EddyKafka
import EddyTestSupport
import Foundation
import XCTest

/// Records whose Kafka key is not their key field's value — no key (a console producer),
/// another key (a service keyed by session) — against the real broker and Redis: the same
/// events produced keyed by user, unkeyed and keyed by session give the same `eddy dump`,
/// equal to a plain count per user; the re-keyed records are counted in the run's summary.
final class KeyMismatchIntegrationTests: XCTestCase {
    private static let partitions = 4

    private struct Event {
        let user: String, session: Int, item: Int, price: Int, time: Int64
        var json: [UInt8] {
            // JSON-escaped user id (a backslash in one of them).
            let escaped = user.replacingOccurrences(of: "\\", with: "\\\\")
            return Array(#"{"user_id":"\#(escaped)","session_id":"s\#(session)","item_id":"i\#(item)","price":\#(price),"ts":\#(time)}"#.utf8)
        }
    }

    func testTheSameEventsKeyedUnkeyedOrKeyedBySessionGiveTheSameDump() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        var random = TestRandom(seed: 8)
        var time: Int64 = 1_767_225_600_000
        let events = (0..<6_000).map { i -> Event in
            time += Int64(1 + random.below(20_000))
            let user = random.below(10) == 0 ? "u\\\(random.below(5))" : "u\(random.below(300))"
            return Event(user: user, session: i / 5, item: random.below(40), price: 1 + random.below(99), time: time)
        }
        let admin = try KafkaAdmin(config: services.kafkaConfig)
        let producer = try KafkaProducer(config: services.kafkaConfig)
        let config = try services.writeRuntimeConfig(name: "keys", commitIntervalMs: 200, threads: 2)
        var dumps: [String: [String]] = [:]
        for keying in ["user", "none", "session"] {
            let topic = "clicks-keyed-by-\(keying)"
            try admin.createTopic(topic, partitions: Self.partitions)
            for e in events {
                let key: [UInt8]? = keying == "user" ? Array(e.user.utf8) : keying == "session" ? Array("s\(e.session)".utf8) : nil
                try producer.send(topic: topic, key: key, value: e.json)
            }
            try producer.flush()
            let topology = services.workDir.appendingPathComponent("keys-\(keying).yaml").path
            try keyedAnyWayTopology(application: "keys-\(keying)", topic: topic, namespace: keying).write(toFile: topology, atomically: true, encoding: .utf8)
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
            XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))
            let summary = try runSummary(run.stdout)
            XCTAssertEqual(summary["records_processed"] as? Int, events.count, keying)
            XCTAssertEqual(summary["rekeyed_source_records"] as? Int, keying == "user" ? 0 : events.count, keying)
            if keying != "user" {
                XCTAssertTrue(run.stderr.contains("source record(s) so far had a Kafka key other than their user_id (or none): re-keyed through keys-\(keying)-source-repartition"),
                              String(run.stderr.suffix(2000)))
            }
            let dump = try EddyCLI.run(["dump", topology, "--config", config])
            XCTAssertEqual(dump.status, 0, dump.stderr)
            dumps[keying] = dump.stdout.split(separator: "\n").map { String($0.dropFirst(keying.count + 1)) }.sorted()
        }
        // The reference: a plain count and sum per user.
        var perUser: [String: (count: Int, price: Int)] = [:]
        for e in events { perUser[e.user, default: (0, 0)].count += 1; perUser[e.user]!.price += e.price }
        let expected = perUser.map { "user:\($0.key) hash count=\($0.value.count) sum_price=\($0.value.price)" }.sorted()
        XCTAssertEqual(dumps["user"]!.filter { $0.hasPrefix("user:") && $0.contains(" hash count=") && !$0.contains(":closed ") }, expected)
        XCTAssertGreaterThan(dumps["user"]!.filter { $0.hasPrefix("session:") }.count, 0, "some sessions are open")
        XCTAssertEqual(dumps["none"], dumps["user"], "unkeyed")
        XCTAssertEqual(dumps["session"], dumps["user"], "keyed by session")
    }
}
