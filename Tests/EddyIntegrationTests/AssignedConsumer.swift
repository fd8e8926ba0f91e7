import EddyKafka
import Foundation

/// Records what the group assigned to a test's consumer.
final class RecordingAssignment: RebalanceListener {
    var partitions: [TopicPartition] = []
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        self.partitions = partitions
        return [:]
    }
    func partitionsRevoked(_ partitions: [TopicPartition]) { self.partitions = [] }
}

/// A consumer of `topics` in group `group` on the services' broker (6 s session time-out,
/// as Tansu needs), polled into `batch` until the group assigned it partitions (at most 30 s).
func assignedConsumer(_ services: LocalServices, group: String, topics: [String], batch: ConsumedBatch) throws -> (KafkaConsumer, RecordingAssignment) {
    var config = services.kafkaConfig
    config["group.id"] = group
    config["session.timeout.ms"] = "6000"
    let listener = RecordingAssignment()
    let consumer = try KafkaConsumer(config: config, topics: topics, listener: listener)
    let deadline = Date().addingTimeInterval(30)
    while listener.partitions.isEmpty, Date() < deadline { consumer.poll(into: batch, timeoutMs: 100) }
    return (consumer, listener)
}
