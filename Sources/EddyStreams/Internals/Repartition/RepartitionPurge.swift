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
/// queue of its own: a slow or refusing broker delays the next purge, never the thread —
/// nor its stop (what the last commits moved past is purged by the next run).
/// After failures it backs off — twice as long after each failure in a row, up to an hour
/// — and logs the first few and then every tenth (Tansu 0.6.0 drops the connection on
/// every DeleteRecords; a broker restarting refuses for a while).
///
/// `@unchecked Sendable`: `last` and `pending` are touched only by the stream thread;
/// `failures` only on `queue`; `busy` and `backoffUntil` are atomic.
final class RepartitionPurge: @unchecked Sendable {
    static let longestBackoff = Duration.seconds(3600)
    private let deleter: any RecordDeleter
    private let interval: Duration
    private let logger: Logger
    private let queue: DispatchQueue
    private var last: ContinuousClock.Instant?
    /// Committed offsets not purged yet, by repartition partition.
    private var pending: [TopicPartition: Int64] = [:]
    private var failures = 0
    private let busy = Atomic<Bool>(false)
    /// Nanoseconds on `clock` before which no purge is tried (after failures).
    private let backoffUntil = Atomic<Int64>(0)
    private let started = ContinuousClock.now

    init(deleter: any RecordDeleter, interval: Duration, logger: Logger, name: String) {
        self.deleter = deleter
        self.interval = interval
        self.logger = logger
        queue = DispatchQueue(label: name)
    }

    /// A commit moved these repartition partitions' committed offsets.
    func committed(_ offsets: [TopicPartition: Int64]) {
        for (tp, offset) in offsets where offset > 0 { pending[tp] = offset }
        let now = ContinuousClock.now
        if let last, now - last < interval { return }
        guard !backingOff(now) else { return }
        guard !pending.isEmpty, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        last = now
        let offsets = pending
        pending.removeAll()
        queue.async { [self] in
            defer { busy.store(false, ordering: .releasing) }
            purge(offsets)
        }
    }

    private func backingOff(_ now: ContinuousClock.Instant) -> Bool {
        (now - started).nanoseconds < backoffUntil.load(ordering: .relaxed)
    }

    private func purge(_ offsets: [TopicPartition: Int64]) {
        do {
            try deleter.deleteRecords(before: offsets)
            failures = 0
            logger.debug("purged \(offsets.count) repartition partition(s) up to their committed offsets")
        } catch {
            failures += 1
            let wait = min(max(interval, .seconds(1)) * (1 << min(failures - 1, 20)), Self.longestBackoff)
            backoffUntil.store((ContinuousClock.now - started).nanoseconds + wait.nanoseconds, ordering: .relaxed)
            if failures <= 3 || failures % 10 == 0 {
                logger.warning("purging repartition topics up to their committed offsets failed \(failures) time(s) in a row (next try in \(wait.seconds) s; the topics keep their records meanwhile, nothing is lost): \(error)")
            }
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, attos) = components
        return s * 1_000_000_000 + attos / 1_000_000_000
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
