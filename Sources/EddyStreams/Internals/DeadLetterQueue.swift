import EddyKafka

/// Collects records that fail decoding or validation and sends them to the dead-letter
/// topic, untouched, with the reason and source position in headers. They are sent at
/// commit, through the thread's producer, in the same attempt as the offsets that move past
/// them: under exactly-once a dead letter is written exactly once, and a record's offset is
/// never committed before its dead letter is durable. One per stream thread.
final class DeadLetterQueue {
    static let reasonHeader = "eddy.error.reason"
    static let categoryHeader = "eddy.error.category"
    static let topicHeader = "eddy.source.topic"
    static let partitionHeader = "eddy.source.partition"
    static let offsetHeader = "eddy.source.offset"

    private struct Letter {
        let key: [UInt8]?
        let value: [UInt8]
        let headers: [(String, [UInt8])]
        let category: String
        /// The task's input partition the record came from.
        let partition: TopicPartition
    }

    let topic: String
    /// Dead letters of the current attempt, kept until it commits (a failed attempt sends
    /// them again).
    private var letters: [Letter] = []

    init(topic: String) { self.topic = topic }

    func add(_ message: KafkaMessage, reason: DeadLetterReason) {
        add(key: message.key.map(Array.init), value: Array(message.value), from: TopicPartition(message.topic, message.partition),
            offset: message.offset, reason: reason)
    }

    /// A record of input partition `partition` (the source's, or a repartition topic's for
    /// a record re-keyed on its way to the node that refused it).
    func add(key: [UInt8]?, value: [UInt8], from partition: TopicPartition, offset: Int64, reason: DeadLetterReason) {
        letters.append(Letter(
            key: key,
            value: value,
            headers: [
                (Self.reasonHeader, Array(reason.message.utf8)),
                (Self.categoryHeader, Array(reason.category.rawValue.utf8)),
                (Self.topicHeader, Array(partition.topic.utf8)),
                (Self.partitionHeader, Array(String(partition.partition).utf8)),
                (Self.offsetHeader, Array(String(offset).utf8)),
            ],
            category: reason.category.rawValue,
            partition: partition))
    }

    /// The letters not yet committed: (reason category, value), for a test driver.
    var pending: [(category: String, value: [UInt8])] { letters.map { ($0.category, $0.value) } }

    /// Sends the letters of `partitions` (the tasks being committed).
    func send(for partitions: Set<TopicPartition>, through producer: StreamProducer) throws {
        for letter in letters where partitions.contains(letter.partition) {
            try producer.send(topic: topic, key: letter.key, value: letter.value, headers: letter.headers)
        }
    }

    /// Once the attempt committed: forgets the letters sent, returns their count per reason.
    func committed(for partitions: Set<TopicPartition>) -> [String: Int] {
        var counts: [String: Int] = [:]
        for letter in letters where partitions.contains(letter.partition) { counts[letter.category, default: 0] += 1 }
        letters.removeAll { partitions.contains($0.partition) }
        return counts
    }

    /// Drops the letters of partitions given up without a commit (their records are
    /// processed again by the next owner).
    func discard(for partitions: Set<TopicPartition>) { letters.removeAll { partitions.contains($0.partition) } }
}
