import EddyKafka
import EddyState
import Logging
import Synchronization

/// What the stream threads of one process share. `Sendable`: immutable except for the stop
/// flag (atomic), the stop deadline and the failure message (Mutexes); the database,
/// metrics and tracker are Sendable themselves.
final class RuntimeContext: Sendable {
    let topology: CompiledTopology
    let config: RuntimeConfig
    /// Partitions of the source topic, and so of every internal topic.
    let partitionCount: Int
    /// Partitions of each global table's topic, in `CompiledTopology.tables` order.
    let tablePartitionCounts: [Int]
    /// Partitions of each output topic.
    let outputPartitionCounts: [String: Int]
    let database: StateDatabase
    let metrics: StreamsMetrics
    let tracker: CatchUpTracker
    let untilCaughtUp: Bool
    /// Every task writes its whole state to Redis at its first commit (`eddy run --rematerialize`).
    let rematerialize: Bool
    /// Where partitions without local state start (from `eddy reset`), if anywhere special.
    let replayStart: ReplayStart?
    let logger: Logger
    private let stopFlag = Atomic<Bool>(false)
    private let failureMessage = Mutex<String?>(nil)
    private let kafkaStopDeadline = Mutex<ContinuousClock.Instant?>(nil)

    init(topology: CompiledTopology, config: RuntimeConfig, partitionCount: Int, tablePartitionCounts: [Int], outputPartitionCounts: [String: Int], database: StateDatabase, metrics: StreamsMetrics,
         tracker: CatchUpTracker, untilCaughtUp: Bool, rematerialize: Bool, replayStart: ReplayStart?, logger: Logger) {
        self.topology = topology
        self.config = config
        self.partitionCount = partitionCount
        self.tablePartitionCounts = tablePartitionCounts
        self.outputPartitionCounts = outputPartitionCounts
        self.database = database
        self.metrics = metrics
        self.tracker = tracker
        self.untilCaughtUp = untilCaughtUp
        self.rematerialize = rematerialize
        self.replayStart = replayStart
        self.logger = logger
    }

    /// Where `tp` starts when the group has no position for it, if `eddy reset` said.
    func replayStart(of tp: TopicPartition) -> ReplayStart.Position? {
        replayStart?.topic == tp.topic ? replayStart?.partitions[tp.partition] : nil
    }

    var stopRequested: Bool { stopFlag.load(ordering: .relaxed) }

    /// Asks every thread to commit and stop; a failure message makes the run fail. The
    /// first request starts the stop's clock (`RuntimeConfig.stopTimeoutMs`).
    func requestStop(failure: String? = nil) {
        if let failure { failureMessage.withLock { if $0 == nil { $0 = failure } } }
        // At least a second for Kafka, whatever a config built in Swift says (files must
        // give 6 s or more).
        let deadline = ContinuousClock.now + max(.milliseconds(config.stopTimeoutMs) - TaskCommitter.tailGraceOnStop, .seconds(1))
        kafkaStopDeadline.withLock { if $0 == nil { $0 = deadline } }
        stopFlag.store(true, ordering: .relaxed)
    }

    /// When a stop gives up waiting for Kafka: its blocking transactional steps are
    /// abandoned then, so the last commit's Redis writes still fit in the stop's time.
    /// nil until a stop is requested.
    var stopDeadlineForKafka: ContinuousClock.Instant? { kafkaStopDeadline.withLock { $0 } }

    var failure: String? { failureMessage.withLock { $0 } }
}
