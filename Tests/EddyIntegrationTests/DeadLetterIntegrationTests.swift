import EddyKafka
import EddyRedis
import Foundation
import XCTest

/// Malformed records go to the dead-letter topic with a reason; everything else is counted
/// exactly; the process never stops on data.
final class DeadLetterIntegrationTests: XCTestCase {
    func testMalformedEventsLandInTheDeadLetterTopicWithAReason() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-dlq-test"
        let topology = try userCountsTopology(application: "counts-dlq", topic: topic, in: services.workDir)
        let config = try services.writeRuntimeConfig(name: "dlq")

        // Valid generated events, into the file for the reference…
        let file = services.workDir.appendingPathComponent("valid.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "20000", "--users", "500", "--seed", "3",
                                   "--topic", topic, "--partitions", "4", "--out", file, "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)

        // …and malformed ones beside them, each on a user that also has valid events.
        // 3 MiB: more than the producer queue's share of the test's 64 MB budget (2 MiB).
        let huge = "{\"user_id\":\"u1\",\"event_type\":\"view\",\"ts\":1,\"pad\":\"" + String(repeating: "x", count: 3 << 20) + "\"}"
        let malformed: [(String, [UInt8])] = [
            ("invalid_json", Array("{\"user_id\":\"u1\",\"event_type\":\"view\",\"ts\":".utf8)),
            ("invalid_json", Array("not json at all".utf8)),
            ("missing_field", Array("{\"event_type\":\"view\",\"ts\":1767225600000}".utf8)),
            ("missing_field", Array("{\"user_id\":\"u2\",\"ts\":1767225600000}".utf8)),
            ("wrong_type", Array("{\"user_id\":\"u3\",\"event_type\":\"view\",\"ts\":\"yesterday\"}".utf8)),
            ("wrong_type", Array("{\"user_id\":\"u4\",\"event_type\":\"cart\",\"ts\":1767225600000,\"price\":\"cheap\"}".utf8)),
            ("wrong_type", Array("{\"user_id\":{\"id\":5},\"event_type\":\"view\",\"ts\":1767225600000}".utf8)),
            ("out_of_range", Array("{\"user_id\":\"u7\",\"event_type\":\"view\",\"ts\":1e400}".utf8)),
            ("out_of_range", Array("{\"user_id\":\"u8\",\"event_type\":\"view\",\"ts\":1767225600000000}".utf8)),
            ("out_of_range", Array("{\"user_id\":\"u9\",\"event_type\":\"cart\",\"ts\":1767225600000,\"price\":1e400}".utf8)),
            ("too_large", Array(huge.utf8)),
            ("invalid_utf8", Array("{\"user_id\":\"u6\",\"event_type\":\"view\",\"ts\":1767225600000,\"note\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)),
        ]
        var producerConfig = services.kafkaConfig
        producerConfig["message.max.bytes"] = "4194304"
        let producer = try KafkaProducer(config: producerConfig)
        for (i, (_, value)) in malformed.enumerated() {
            try producer.send(topic: topic, key: Array("u\(i)".utf8), value: value)
        }
        try producer.flush()

        let redis = try services.redis()
        let result = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let summary = try runSummary(result.stdout)
        XCTAssertEqual(summary["records_in"] as? Int, 20_000 + malformed.count)
        XCTAssertEqual(summary["records_processed"] as? Int, 20_000)
        XCTAssertEqual(summary["dead_letters"] as? Int, malformed.count)
        let byReason = summary["dead_letters_by_reason"] as? [String: Int] ?? [:]
        XCTAssertEqual(byReason, Dictionary(malformed.map { ($0.0, 1) }, uniquingKeysWith: +))

        // The dead-letter topic holds each malformed record untouched, with its reason.
        let letters = try readAll(topic: "counts-dlq-dlq", services: services)
        XCTAssertEqual(letters.count, malformed.count)
        for (category, value) in malformed {
            guard let letter = letters.first(where: { $0.value == value }) else {
                XCTFail("no dead letter for a \(category) record")
                continue
            }
            XCTAssertEqual(letter.headers["eddy.error.category"], category)
            XCTAssertFalse(letter.headers["eddy.error.reason", default: ""].isEmpty)
            XCTAssertEqual(letter.headers["eddy.source.topic"], topic)
            XCTAssertNotNil(letter.headers["eddy.source.offset"].flatMap(Int.init))
        }
        XCTAssertEqual(try UserCountsReference(jsonl: file).differences(in: redis), [])
    }

    struct Letter {
        let value: [UInt8]
        let headers: [String: String]
    }

    private final class Assignments: RebalanceListener {
        func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
            Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.beginning) })
        }
        func partitionsRevoked(_ partitions: [TopicPartition]) {}
    }

    /// Reads a topic from the beginning until every partition reported its end.
    private func readAll(topic: String, services: LocalServices) throws -> [Letter] {
        var config = services.kafkaConfig
        config["group.id"] = "dlq-reader-\(UUID().uuidString.prefix(6))"
        config["session.timeout.ms"] = "6000"
        config["fetch.max.bytes"] = "16777216"
        let listener = Assignments()
        let consumer = try KafkaConsumer(config: config, topics: [topic], listener: listener)
        defer { consumer.close() }
        let batch = ConsumedBatch(capacity: 100)
        var letters: [Letter] = []
        var ended = Set<Int32>()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            consumer.poll(into: batch, timeoutMs: 200)
            for i in 0..<batch.count {
                let m = batch[i]
                if m.isPartitionEOF { ended.insert(m.partition); continue }
                if m.isError { continue }
                var headers: [String: String] = [:]
                for name in ["eddy.error.category", "eddy.error.reason", "eddy.source.topic", "eddy.source.offset"] {
                    headers[name] = m.header(name).map { String(decoding: $0, as: UTF8.self) }
                }
                letters.append(Letter(value: Array(m.value), headers: headers))
            }
            if !consumer.assignment.isEmpty, ended.count == consumer.assignment.count { break }
        }
        batch.release()
        return letters
    }
}
