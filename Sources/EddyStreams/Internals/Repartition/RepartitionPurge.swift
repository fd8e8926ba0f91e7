import Dispatch
import EddyKafka
import Logging
import Synchronization

/// Deletes what the group has committed past in the repartition topics a stream thread
/// reads (Kafka Streams' repartition purge). Those topics keep their records with no time
/// limit (`Repartitions.topicConfigs`), so a downstream task stopped for longer than any
/// retention loses nothing, and the purge keeps them as short as their slowest reader: a
/// record before a committed offset is never read again (the intake's pending attempts are
/// in its store, not in the topic). Runs at most every `interval`, after a commit, on a
/// queue of its own: a slow or refusing broker delays the next purge, never the thread.
/// A broker that refuses `refusalsToGiveUp` purges in a row (Tansu 0.6.0 drops the
/// connection on DeleteRecords) is not asked again by this process, which says so once.
///
/// `@unchecked Sendable`: `last` and `pending` are touched only by the stream thread;
/// `refusals` only on `queue`; `busy` and `gaveUp` are atomic.
final class RepartitionPurge: @unchecked Sendable {
    static let refusalsToGiveUp = 3
    private let deleter: any RecordDeleter
    private let interval: Duration
    private let logger: Logger
    private let queue: DispatchQueue
    private var last: ContinuousClock.Instant?
    /// Committed offsets not purged yet, by repartition partition.
    private var pending: [TopicPartition: Int64] = [:]
    private var refusals = 0
    private let busy = Atomic<Bool>(false)
    private let gaveUp = Atomic<Bool>(false)

    init(deleter: any RecordDeleter, interval: Duration, logger: Logger, name: String) {
        self.deleter = deleter
        self.interval = interval
        self.logger = logger
        queue = DispatchQueue(label: name)
    }

    /// A commit moved these repartition partitions' committed offsets.
    func committed(_ offsets: [TopicPartition: Int64]) {
        guard !gaveUp.load(ordering: .relaxed) else { return }
        for (tp, offset) in offsets where offset > 0 { pending[tp] = offset }
        let now = ContinuousClock.now
        if let last, now - last < interval { return }
        guard !pending.isEmpty, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        last = now
        let offsets = pending
        pending.removeAll()
        queue.async { [self] in
            defer { busy.store(false, ordering: .releasing) }
            purge(offsets)
        }
    }

    /// At the thread's stop: what the last commits moved past, purged before it returns.
    func finish() {
        let offsets = gaveUp.load(ordering: .relaxed) ? [:] : pending
        pending.removeAll()
        queue.sync { if !offsets.isEmpty { purge(offsets) } }
    }

    private func purge(_ offsets: [TopicPartition: Int64]) {
        guard !gaveUp.load(ordering: .relaxed) else { return }
        do {
            try deleter.deleteRecords(before: offsets)
            refusals = 0
            logger.debug("purged \(offsets.count) repartition partition(s) up to their committed offsets")
        } catch {
            refusals += 1
            if refusals >= Self.refusalsToGiveUp {
                gaveUp.store(true, ordering: .relaxed)
                logger.warning("the broker refused to delete committed repartition records \(refusals) times in a row (\(error)): this process stops asking; the repartition topics keep every record (retention.ms=-1) until `eddy reset` empties them")
            } else {
                logger.warning("purging repartition topics up to their committed offsets failed (the next purge deletes up to later offsets): \(error)")
            }
        }
    }
}

/// What deletes the records below offsets: the broker, or a test's stand-in.
protocol RecordDeleter: Sendable {
    func deleteRecords(before offsets: [TopicPartition: Int64]) throws
}

/// Kafka's DeleteRecords through an admin client made at the first use.
///
/// `@unchecked Sendable`: used only on its `RepartitionPurge`'s queue.
final class KafkaRecordDeleter: RecordDeleter, @unchecked Sendable {
    private let kafka: KafkaConfig
    private var admin: KafkaAdmin?

    init(kafka: KafkaConfig) { self.kafka = kafka }

    func deleteRecords(before offsets: [TopicPartition: Int64]) throws {
        if admin == nil { admin = try KafkaAdmin(config: kafka) }
        try admin!.deleteRecords(before: offsets, timeoutMs: 5_000)
    }
}
