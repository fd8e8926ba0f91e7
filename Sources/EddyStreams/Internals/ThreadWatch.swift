import EddyKafka
import Logging

/// What a stream thread reports about itself between commits: its tasks' lag, once a second
/// whatever commits do (so a stalled pipeline shows on /metrics as a growing lag), and a
/// warning when it has had no partitions for long. Owned by the stream thread.
final class ThreadWatch {
    private let metrics: StreamsMetrics
    private let logger: Logger
    private var lastLagUpdate = ContinuousClock.now
    private static let lagUpdateInterval = Duration.seconds(1)
    /// When the thread last had partitions (or started), and when it last said it has none.
    private var lastAssigned = ContinuousClock.now
    private var lastUnassignedWarning: ContinuousClock.Instant?
    private static let unassignedWarningInterval = Duration.seconds(30)

    init(metrics: StreamsMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// Lag from the high watermarks fetch responses carry.
    func updateLag(now: ContinuousClock.Instant, tasks: Dictionary<TopicPartition, StreamTask>.Values, consumer: KafkaConsumer?) {
        guard now - lastLagUpdate >= Self.lagUpdateInterval, let consumer else { return }
        lastLagUpdate = now
        for task in tasks {
            let high = consumer.cachedWatermarks(task.partition)?.high
            metrics.setLag(task.partition.description, high.map { max($0 - task.nextOffset, 0) })
        }
    }

    /// Measures the lag a commit left at the next loop.
    func committed() { lastLagUpdate = .now - Self.lagUpdateInterval }

    /// A thread without partitions is normal when the group has more members than
    /// partitions, but also what a group stuck in a rebalance looks like: say so, so an
    /// operator is not left looking at "processed 0 records".
    func warnIfUnassignedTooLong(idle: Bool) {
        let now = ContinuousClock.now
        if !idle {
            lastAssigned = now
            lastUnassignedWarning = nil
            return
        }
        guard now - lastAssigned >= Self.unassignedWarningInterval,
              lastUnassignedWarning.map({ now - $0 >= Self.unassignedWarningInterval }) ?? true else { return }
        lastUnassignedWarning = now
        logger.warning("no partitions assigned for \(Int((now - lastAssigned) / .seconds(1))) s: other members hold them all, or the group is stuck in a rebalance (Tansu 0.6.0 can stall after a static member restarts; see README)")
    }
}
