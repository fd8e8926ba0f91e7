import EddyKafka
import Foundation
import XCTest

/// Records whose Kafka key is not their key field's value (a console producer without keys,
/// a service keyed by session): Eddy cannot yet re-key them (docs/exactly-once.md §8), so it counts
/// them and says so, instead of letting a user's counts split between tasks silently.
final class KeyMismatchIntegrationTests: XCTestCase {
    func testRecordsKeyedOtherwiseAreCountedAndReported() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-keys"
        let topology = try userCountsTopology(application: "counts-keys", topic: topic, in: services.workDir)
        let config = try services.writeRuntimeConfig(name: "keys")
        // Generated events are keyed by user_id: none of them may count.
        let gen = try EddyCLI.run(["generate", "--events", "3000", "--users", "200", "--seed", "8", "--topic", topic,
                                   "--partitions", "4", "--out", services.workDir.appendingPathComponent("keys.jsonl").path, "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let producer = try KafkaProducer(config: services.kafkaConfig)
        func event(_ user: String, session: String) -> [UInt8] {
            Array(#"{"user_id":"\#(user)","session_id":"\#(session)","event_type":"view","item_id":"i1","ts":1767225600000}"#.utf8)
        }
        for i in 0..<40 { try producer.send(topic: topic, key: nil, value: event("u\(i)", session: "s\(i)")) }
        for i in 0..<25 { try producer.send(topic: topic, key: Array("s\(i)".utf8), value: event("u\(i)", session: "s\(i)")) }
        for i in 0..<10 { try producer.send(topic: topic, key: Array("u\\\(i)".utf8), value: event("u\\\\\(i)", session: "s")) }  // an escaped key field, keyed right
        try producer.flush()
        let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let summary = try runSummary(run.stdout)
        XCTAssertEqual(summary["records_processed"] as? Int, 3000 + 40 + 25 + 10)
        XCTAssertEqual(summary["mismatched_key_records"] as? Int, 65)
        XCTAssertTrue(run.stderr.contains("65 source record(s) so far had a Kafka key other than their user_id"), String(run.stderr.suffix(2000)))
    }
}
