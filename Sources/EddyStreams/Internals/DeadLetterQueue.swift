import EddyKafka

/// Sends records that fail decoding or validation to the dead-letter topic, untouched, with
/// the reason and source position in headers. Flushed before every commit, so a record's
/// offset is never committed before its dead letter is durable. One per stream thread.
final class DeadLetterQueue {
    static let reasonHeader = "eddy.error.reason"
    static let categoryHeader = "eddy.error.category"
    static let topicHeader = "eddy.source.topic"
    static let partitionHeader = "eddy.source.partition"
    static let offsetHeader = "eddy.source.offset"

    let topic: String
    private let producer: KafkaProducer
    /// Dead letters per reason category since the last `takeCounts()`.
    private var counts: [String: Int] = [:]

    init(topic: String, config: KafkaConfig) throws {
        self.topic = topic
        var config = config
        // Oversized records must fit in the dead-letter topic too.
        config["message.max.bytes"] = config["message.max.bytes"] ?? "16777216"
        config["enable.idempotence"] = "true"
        producer = try KafkaProducer(config: config)
    }

    func send(_ message: KafkaMessage, sourceTopic: String, reason: DeadLetterReason) throws {
        counts[reason.category.rawValue, default: 0] += 1
        try producer.send(
            topic: topic,
            key: message.key.map(Array.init),
            value: Array(message.value),
            headers: [
                (Self.reasonHeader, Array(reason.message.utf8)),
                (Self.categoryHeader, Array(reason.category.rawValue.utf8)),
                (Self.topicHeader, Array(sourceTopic.utf8)),
                (Self.partitionHeader, Array(String(message.partition).utf8)),
                (Self.offsetHeader, Array(String(message.offset).utf8)),
            ])
    }

    func poll() { producer.poll() }

    func flush() throws { try producer.flush() }

    func takeCounts() -> [String: Int] {
        defer { counts.removeAll(keepingCapacity: true) }
        return counts
    }
}
