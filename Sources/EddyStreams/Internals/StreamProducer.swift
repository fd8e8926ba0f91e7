import EddyKafka
import Logging

/// A stream thread's one producer, for everything the thread writes to Kafka: changelog
/// records, repartition partials, commit markers, resolutions and dead letters. Under exactly-once it is transactional (EOS v2:
/// the records and the consumed input offsets commit or abort together); under
/// at-least-once it is idempotent and offsets are committed after a flush.
///
/// It numbers commit attempts and carries the in-band commit markers (docs/exactly-once.md §2):
/// after attempt N commits, the internal partitions it wrote to owe a marker naming N,
/// which goes out in the next transaction.
final class StreamProducer: ChangelogWriter {
    let guarantee: ProcessingGuarantee
    private let config: KafkaConfig
    private var producer: KafkaProducer
    /// Where `producer`'s blocking transactional calls run, under `stepTimeout`.
    private var steps: DeadlineThread
    private let stepTimeout: Duration
    /// When a stop gives its steps up, whatever `stepTimeout` says (nil: no stop yet).
    private let stopDeadline: @Sendable () -> ContinuousClock.Instant?
    /// The last transactional call missed its deadline: `producer` is abandoned.
    private var needsNewProducer = false
    private let metrics: StreamsMetrics
    private let logger: Logger
    /// This producer's life: random, so two lives never share attempt ids.
    let life = UInt64.random(in: 1...UInt64.max)
    private var sequence: UInt64 = 1
    /// This life's aborted attempts that had written to an internal partition, as runs of
    /// consecutive sequences (an outage aborts a run): left out of its changelog markers.
    private var abortedRuns: [ClosedRange<UInt64>] = []
    private var inTransaction = false
    /// Attempts known to have committed, per internal partition, not yet marked there.
    private var unmarked: [InternalPartition: [CommitAttempt]] = [:]
    /// Resolutions to send (upstream partition, its committed position or -1, and a source
    /// task's committed source repartition offset) per repartition partition, in every
    /// attempt until one commits: hidden if aborted (on Kafka), and the owner's partials
    /// must not arrive downstream before it.
    private var unresolved: [InternalPartition: [(upstream: Int32, committed: Int64, rekeyedCommitted: Int64)]] = [:]
    private var resolvedThisAttempt = false
    /// Internal partitions written in the current attempt, and those it marked.
    private var touched: Set<InternalPartition> = []
    private var markedThisAttempt: Set<InternalPartition> = []

    init(config: KafkaConfig, guarantee: ProcessingGuarantee, transactionalId: String, stepTimeout: Duration,
         stopDeadline: @escaping @Sendable () -> ContinuousClock.Instant?, metrics: StreamsMetrics, logger: Logger) throws {
        var config = config
        // Oversized input records must fit in the dead-letter topic too.
        config["message.max.bytes"] = config["message.max.bytes"] ?? "16777216"
        // ...and in the queue: librdkafka refuses a record larger than the queue's byte limit
        // (the memory budget's share: 2 MiB at 64 MB) as "queue full" however empty it is.
        if let most = config["message.max.bytes"].flatMap(Int.init), let kbytes = config["queue.buffering.max.kbytes"].flatMap(Int.init),
           kbytes << 10 < most {
            config["queue.buffering.max.kbytes"] = String((most + 1023) >> 10)
        }
        config["enable.idempotence"] = "true"
        if guarantee == .exactlyOnce { config["transactional.id"] = transactionalId }
        self.config = config
        self.guarantee = guarantee
        self.stepTimeout = stepTimeout
        self.stopDeadline = stopDeadline
        self.metrics = metrics
        self.logger = logger
        (producer, steps) = try Self.start(config, guarantee: guarantee, stepTimeout: stepTimeout, stopDeadline: stopDeadline)
    }

    /// A new producer and the thread its blocking calls run on. Under exactly-once it
    /// registers the transactional id, which fences any older producer with it (a zombie
    /// of this instance, or this thread's own abandoned producer): from here on that one
    /// can no longer commit.
    private static func start(_ config: KafkaConfig, guarantee: ProcessingGuarantee, stepTimeout: Duration,
                              stopDeadline: @escaping @Sendable () -> ContinuousClock.Instant?) throws -> (KafkaProducer, DeadlineThread) {
        let producer = try KafkaProducer(config: config)
        // What it has not delivered at close is of an attempt that did not commit: its
        // input is processed again by the next start (at-least-once commits offsets only
        // after a flush), so a close never waits for an unreachable broker.
        producer.flushesOnClose = false
        let steps = DeadlineThread(name: "eddy-producer-\(config["transactional.id"] ?? "idempotent")", cutShort: stopDeadline)
        if guarantee == .exactlyOnce {
            try steps.run("init transactions", timeout: stepTimeout) { try producer.initTransactions() }
        }
        return (producer, steps)
    }

    /// Runs a blocking transactional call under the step deadline. On a time-out the
    /// producer is abandoned (its call may never return) and replaced before the next use.
    private func step(_ name: String, _ body: @escaping (KafkaProducer) throws -> Void) throws {
        let producer = self.producer
        do {
            try steps.run(name, timeout: stepTimeout) { try body(producer) }
        } catch let timedOut as StepTimedOut {
            needsNewProducer = true
            if timedOut.cutByStop {
                logger.warning("\(timedOut): abandoning the producer and the attempt (it counts as aborted; the next start processes its input again)")
            } else {
                metrics.transactionTimeouts.add(1, ordering: .relaxed)
                logger.warning("\(timedOut) (broker unreachable?): abandoning the producer; a new one with the same transactional id replaces it and fences the old one, and the attempt counts as aborted")
            }
            throw timedOut
        }
    }

    /// After an abandoned producer: starts its replacement (throws while the broker is unreachable).
    private func replaceProducerIfNeeded() throws {
        guard needsNewProducer else { return }
        (producer, steps) = try Self.start(config, guarantee: guarantee, stepTimeout: stepTimeout, stopDeadline: stopDeadline)
        needsNewProducer = false
        logger.notice("a new producer replaced the abandoned one")
    }

    var attempt: CommitAttempt { CommitAttempt(life: life, sequence: sequence) }

    private static func milliseconds(until deadline: ContinuousClock.Instant, atMost limit: Int) -> Int {
        min(limit, max(0, Int((deadline - .now) / .milliseconds(1))))
    }

    /// Sends one record of the current attempt (a transaction is begun on the first). In a
    /// stop, a full queue is waited for only until the stop's time for Kafka is over.
    func send(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?, headers: [(String, [UInt8])], tag: Int = 0) throws {
        try replaceProducerIfNeeded()
        if let cut = stopDeadline() { producer.maxQueueFullWaitMs = Self.milliseconds(until: cut, atMost: producer.maxQueueFullWaitMs) }
        if guarantee == .exactlyOnce, !inTransaction {
            try producer.beginTransaction()
            inTransaction = true
        }
        try producer.send(topic: topic, partition: partition, key: key, value: value, headers: headers, tag: tag)
    }

    /// Sends a changelog record (a store key's value as of input offset `inputEnd`; nil: a
    /// tombstone).
    func sendChange(to changelog: InternalPartition, key: [UInt8], value: [UInt8]?, inputEnd: Int64, rekeyedEnd: Int64) throws {
        touched.insert(changelog)
        try send(topic: changelog.topic, partition: changelog.partition, key: key, value: value,
                 headers: [(InBandHeaders.attempt, InBandHeaders.encode(attempt, inputEnd: inputEnd, rekeyedEnd: rekeyedEnd))], tag: changelog.tag)
    }

    /// Sends a repartition record: partials or a record of `key` (nil: none, the attempt
    /// only passes through) covering upstream input `start..<end`, the upstream task at
    /// `streamTime`.
    func sendPartial(to repartition: InternalPartition, key: [UInt8]?, value: [UInt8], upstream: Int32, start: Int64, end: Int64, rekeyedEnd: Int64, streamTime: Int64) throws {
        touched.insert(repartition)
        let header = InBandHeaders.encode(InBandHeaders.Partial(attempt: attempt, upstream: upstream, start: start, end: end, streamTime: streamTime, rekeyedEnd: rekeyedEnd))
        try send(topic: repartition.topic, partition: repartition.partition, key: key, value: value,
                 headers: [(InBandHeaders.partial, header)], tag: repartition.tag)
    }

    /// Sends the markers owed on every partition that `include` accepts (all of them at a
    /// clean stop or before giving partitions up, so the next reader needs no resolution).
    func writeOwedMarkers(where include: (InternalPartition) -> Bool = { _ in true }) throws {
        for partition in unmarked.keys where include(partition) { try writeMarkerIfOwed(partition) }
    }

    var owesMarkers: Bool { unmarked.values.contains { !$0.isEmpty } }

    /// Markers or resolutions owed downstream: a commit must carry them even without new
    /// input, or the downstream tasks would wait for them.
    var owesRepartitionRecords: Bool {
        !unresolved.isEmpty || unmarked.contains { $0.key.isRepartition && !$0.value.isEmpty }
    }

    /// A newly opened upstream task tells every repartition partition where the group stands.
    func oweResolution(on repartition: InternalPartition, upstream: Int32, committed: Int64?, rekeyedCommitted: Int64) {
        guard guarantee == .exactlyOnce else { return }
        unresolved[repartition, default: []].append((upstream, committed ?? -1, rekeyedCommitted))
    }

    /// Sends the owed resolutions; call before any partial of the attempt.
    func writeResolutions() throws {
        for (repartition, resolutions) in unresolved {
            for r in resolutions {
                try send(topic: repartition.topic, partition: repartition.partition, key: nil,
                         value: InBandHeaders.encodeResolution(upstream: r.upstream, committed: r.committed, rekeyedCommitted: r.rekeyedCommitted),
                         headers: [(InBandHeaders.resolution, [])], tag: repartition.tag)
            }
        }
        resolvedThisAttempt = !unresolved.isEmpty
    }

    /// Attempts known committed but unmarked (stored by the last life, or resolved by a
    /// restore): marked in the next transaction. Attempts already owed are not added twice.
    func owe(_ attempts: [CommitAttempt], on changelog: InternalPartition) {
        guard guarantee == .exactlyOnce else { return }
        for attempt in attempts where !(unmarked[changelog]?.contains(attempt) ?? false) {
            unmarked[changelog, default: []].append(attempt)
        }
    }

    /// Committed attempts `changelog` still owes a marker for.
    func owed(on changelog: InternalPartition) -> [CommitAttempt] { unmarked[changelog] ?? [] }

    /// Forgets what is owed to changelog partitions of tasks this thread no longer owns.
    func forget(_ gone: Set<InternalPartition>) {
        unmarked = unmarked.filter { !gone.contains($0.key) }
    }

    /// A marker is not data: the attempt that carries it owes no marker for it.
    ///
    /// On a repartition partition (deleted by time and purge, never compacted) the marker
    /// names the attempts, under a key of its own. On a changelog it must compact away: this
    /// life's attempts are marked by one `Marking.through` keyed by the life (every attempt
    /// of the life so far but the aborted ones; each supersedes the last), so a compacted
    /// changelog keeps one marker per life, not one per commit; an attempt of an earlier
    /// life that a restore resolved is named under its own key (one per unclean hand-over).
    func writeMarkerIfOwed(_ changelog: InternalPartition) throws {
        guard guarantee == .exactlyOnce || changelog.isRepartition, let attempts = unmarked[changelog], !attempts.isEmpty,
              markedThisAttempt.insert(changelog).inserted else { return }
        func marker(_ key: String, _ marking: InBandHeaders.Marking) throws {
            try send(topic: changelog.topic, partition: changelog.partition, key: Array(key.utf8), value: InBandHeaders.encode(marking),
                     headers: [(InBandHeaders.marker, [])], tag: changelog.tag)
        }
        if changelog.isRepartition { return try marker("eddy.marker.\(life).\(sequence)", .attempts(attempts)) }
        if attempts.contains(where: { $0.life == life }) {
            // Every attempt before the current one has committed or aborted: the marker
            // covers them all, so it never says less than an earlier one of this life.
            let through = sequence - 1
            try marker("eddy.marker.\(life)", .through(life: life, sequence: through, aborted: abortedRuns))
        }
        // One key per resolved attempt: whoever marks it again writes the same record.
        for attempt in attempts where attempt.life != life {
            try marker("eddy.marker.\(attempt.life).\(attempt.sequence)", .attempts([attempt]))
        }
    }

    /// Commits the attempt: `offsets` (next input offsets) become the group's position
    /// together with everything sent. Throws with librdkafka's classification; `isFatal`
    /// means fenced.
    func commit(offsets: [TopicPartition: Int64], consumer: KafkaConsumer) throws {
        switch guarantee {
        case .exactlyOnce:
            if !inTransaction {
                guard !offsets.isEmpty else { return }
                try replaceProducerIfNeeded()
                try producer.beginTransaction()
                inTransaction = true
            }
            if !offsets.isEmpty {
                try step("send offsets to transaction") { try $0.sendOffsetsToTransaction(offsets, consumer: consumer) }
            }
            try step("commit transaction") { try $0.commitTransaction() }
            inTransaction = false
        case .atLeastOnce:
            try producer.flush(timeoutMs: Int32(stopDeadline().map { Self.milliseconds(until: $0, atMost: 30_000) } ?? 30_000))
            try consumer.commit(offsets)
        }
        // Markers sent in this attempt are delivered; the attempt's partitions now owe one.
        for changelog in markedThisAttempt { unmarked[changelog] = nil }
        // Under at-least-once only repartition partitions get markers: a downstream intake
        // takes an attempt's stream time once the attempt is whole, and without a marker it
        // would know that only from the upstream's next attempt, which may never come (the
        // end of the input, an idle partition): re-keyed tasks would never fire a timer.
        for changelog in touched where guarantee == .exactlyOnce || changelog.isRepartition { unmarked[changelog, default: []].append(attempt) }
        if resolvedThisAttempt { unresolved.removeAll() }
        resolvedThisAttempt = false
        markedThisAttempt.removeAll()
        touched.removeAll()
        sequence += 1
    }

    /// Abandons the current attempt after a failed commit: everything sent in it is void
    /// (the dirty state is still dirty and goes out again in the next attempt).
    func abort() {
        if guarantee == .exactlyOnce, inTransaction {
            if !needsNewProducer {
                do { try step("abort transaction") { try $0.abortTransaction() } } catch { logger.warning("abort transaction: \(error)") }
            }
            inTransaction = false
        }
        if guarantee == .exactlyOnce, !touched.isEmpty {
            if let last = abortedRuns.last, last.upperBound + 1 == sequence {
                abortedRuns[abortedRuns.count - 1] = last.lowerBound...sequence
            } else {
                abortedRuns.append(sequence...sequence)
            }
        }
        markedThisAttempt.removeAll()
        touched.removeAll()
        resolvedThisAttempt = false
        sequence += 1
    }

    /// The changelog offset just past this producer's last delivered record to `changelog`.
    func checkpoint(of changelog: InternalPartition) -> Int64? {
        producer.deliveredOffset(tag: changelog.tag).map { $0 + 1 }
    }

    func poll() { producer.poll() }

    /// Waits until everything sent so far is delivered (outside a commit: for fault points).
    func flush() throws { try producer.flush() }
}

/// One partition of an internal topic: a store's changelog, or the repartition topic of a
/// re-keyed aggregate (`store` is the aggregate's number); `tag` identifies it in delivery
/// reports.
struct InternalPartition: Hashable {
    let store: Int
    let topic: String
    let partition: Int32
    var isRepartition = false

    var tag: Int { (store + 1) << 20 | (isRepartition ? 1 << 19 : 0) | Int(partition) }
    var topicPartition: TopicPartition { TopicPartition(topic, partition) }
}
