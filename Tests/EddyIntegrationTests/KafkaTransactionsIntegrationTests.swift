import EddyKafka
import XCTest

/// The transactional producer against the real Tansu broker: offsets commit with the
/// transaction, delivered
/// offsets are tracked per tag, and a producer fenced by a newer one with the same
/// transactional.id gets a fatal error.
final class KafkaTransactionsIntegrationTests: XCTestCase {
    func testOffsetsCommitWithTheTransactionAndAFencedProducerIsFatal() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let admin = try KafkaAdmin(config: services.kafkaConfig)
        try admin.createTopic("txn-in", partitions: 1)
        try admin.createTopic("txn-out", partitions: 2)

        let batch = ConsumedBatch(capacity: 16)
        let (consumer, listener) = try assignedConsumer(services, group: "txn-app", topics: ["txn-in"], batch: batch)
        let input = TopicPartition("txn-in", 0)
        XCTAssertEqual(listener.partitions, [input])

        var producerConfig = services.kafkaConfig
        producerConfig["transactional.id"] = "txn-app-0"
        let producer = try KafkaProducer(config: producerConfig)
        try producer.initTransactions()
        try producer.beginTransaction()
        for i in 0..<3 {
            try producer.send(topic: "txn-out", partition: 1, key: Array("k\(i)".utf8), value: Array("v\(i)".utf8), headers: [], tag: 7)
        }
        try producer.send(topic: "txn-out", partition: 0, key: nil, value: nil, headers: [("h", [1])], tag: 8)
        try producer.sendOffsetsToTransaction([input: 42], consumer: consumer)
        try producer.commitTransaction()
        XCTAssertEqual(producer.deliveredOffset(tag: 7), 2)
        XCTAssertEqual(producer.deliveredOffset(tag: 8), 0)
        XCTAssertNil(producer.deliveredOffset(tag: 9))
        XCTAssertEqual(try consumer.committed([input])[input], 42)

        // A restarted instance (same transactional.id) fences the old producer for good.
        let newer = try KafkaProducer(config: producerConfig)
        try newer.initTransactions()
        XCTAssertThrowsError(try {
            try producer.beginTransaction()
            try producer.send(topic: "txn-out", partition: 0, key: nil, value: Array("zombie".utf8), headers: [])
            try producer.commitTransaction()
        }()) { error in
            XCTAssertTrue((error as? KafkaError)?.isFatal ?? false, "\(error)")
        }
        try newer.beginTransaction()
        try newer.sendOffsetsToTransaction([input: 43], consumer: consumer)
        try newer.commitTransaction()
        XCTAssertEqual(try consumer.committed([input])[input], 43)
        consumer.close()
    }
}
