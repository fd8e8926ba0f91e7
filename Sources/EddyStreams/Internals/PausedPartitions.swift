import EddyKafka
import Logging

/// The assigned partitions a stream thread has paused: those whose task is still restoring,
/// and all of them while the commit tail is stuck in a Redis outage. In an outage the thread
/// takes no new work but goes on polling (which keeps its group membership and serves
/// rebalances) until the tail is written; records fetched before the pause may still
/// arrive, and are processed and committed after the outage as they would be anyway.
struct PausedPartitions {
    private var paused = Set<TopicPartition>()
    /// Everything is paused because Redis cannot take the last commit.
    private(set) var inOutage = false

    /// Pauses and resumes what changed since the last call.
    mutating func update(_ consumer: KafkaConsumer, redisOutage: Bool, restoring: Set<TopicPartition>, logger: Logger) {
        inOutage = redisOutage
        let wanted = redisOutage ? consumer.assignment : restoring.intersection(consumer.assignment)
        guard wanted != paused else { return }
        do {
            try consumer.resume(paused.subtracting(wanted))
            try consumer.pause(wanted.subtracting(paused))
            paused = wanted
        } catch {
            logger.warning("cannot change the paused partitions: \(error)")
        }
    }

    /// Partitions the consumer pauses as it assigns them.
    mutating func startPaused(_ partitions: Set<TopicPartition>) { paused.formUnion(partitions) }

    /// Partitions no longer assigned.
    mutating func forget(_ partitions: [TopicPartition]) { paused.subtract(partitions) }
}
