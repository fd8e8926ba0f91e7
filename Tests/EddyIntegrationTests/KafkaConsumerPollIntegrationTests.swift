import EddyKafka
import XCTest

/// `KafkaConsumer.poll` against the real broker: it waits for the first record only.
/// librdkafka's batch call waits until the batch is full or the time is up, which held
/// every record of a slow stream for the whole poll timeout.
final class KafkaConsumerPollIntegrationTests: XCTestCase {
    func testAPollReturnsQueuedRecordsWithoutWaitingToFillTheBatch() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let admin = try KafkaAdmin(config: services.kafkaConfig)
        try admin.createTopic("poll-in", partitions: 1)
        let batch = ConsumedBatch(capacity: 64)
        let (consumer, listener) = try assignedConsumer(services, group: "poll-app", topics: ["poll-in"], batch: batch)
        XCTAssertEqual(listener.partitions, [TopicPartition("poll-in", 0)])

        let producer = try KafkaProducer(config: services.kafkaConfig)
        for i in 0..<3 { try producer.send(topic: "poll-in", partition: 0, key: nil, value: Array("r\(i)".utf8)) }
        try producer.flush()

        // Three records and a 64-record batch: a poll that waited for a full batch would
        // take its whole 20 s on each call.
        let started = Date()
        var values: [String] = []
        while values.count < 3, Date().timeIntervalSince(started) < 60 {
            consumer.poll(into: batch, timeoutMs: 20_000)
            for i in 0..<batch.count where !batch[i].isError { values.append(String(decoding: batch[i].value, as: UTF8.self)) }
        }
        let elapsed = Date().timeIntervalSince(started)
        batch.release()
        XCTAssertEqual(values, ["r0", "r1", "r2"])
        XCTAssertLessThan(elapsed, 10, "the polls waited \(elapsed) s for records already on the broker")
    }
}
