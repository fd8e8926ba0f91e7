import EddyKafka
import Logging

/// A stream thread's one producer, for everything the thread writes to Kafka: changelog
/// records, commit markers and dead letters. Under exactly-once it is transactional (EOS v2:
/// the records and the consumed input offsets commit or abort together); under
/// at-least-once it is idempotent and offsets are committed after a flush.
///
/// It numbers commit attempts and carries the in-band commit markers (DESIGN.md §4.2):
/// after attempt N commits, the changelog partitions it wrote to owe a marker naming N,
/// which goes out in the next transaction.
final class StreamProducer {
    let guarantee: ProcessingGuarantee
    private let producer: KafkaProducer
    private let logger: Logger
    /// This producer's life: random, so two lives never share attempt ids.
    let life = UInt64.random(in: 1...UInt64.max)
    private var sequence: UInt64 = 1
    private var inTransaction = false
    /// Attempts known to have committed, per changelog partition, not yet marked there.
    private var unmarked: [ChangelogPartition: [CommitAttempt]] = [:]
    /// Changelog partitions written in the current attempt, and those it marked.
    private var touched: Set<ChangelogPartition> = []
    private var markedThisAttempt: Set<ChangelogPartition> = []

    init(config: KafkaConfig, guarantee: ProcessingGuarantee, transactionalId: String, logger: Logger) throws {
        var config = config
        // Oversized input records must fit in the dead-letter topic too.
        config["message.max.bytes"] = config["message.max.bytes"] ?? "16777216"
        config["enable.idempotence"] = "true"
        if guarantee == .exactlyOnce { config["transactional.id"] = transactionalId }
        producer = try KafkaProducer(config: config)
        self.guarantee = guarantee
        self.logger = logger
        if guarantee == .exactlyOnce {
            // Fences any older producer with this id (a zombie of this instance): from here
            // on it can no longer commit.
            try producer.initTransactions()
        }
    }

    var attempt: CommitAttempt { CommitAttempt(life: life, sequence: sequence) }

    /// Sends one record of the current attempt (a transaction is begun on the first).
    func send(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?, headers: [(String, [UInt8])], tag: Int = 0) throws {
        if guarantee == .exactlyOnce, !inTransaction {
            try producer.beginTransaction()
            inTransaction = true
        }
        try producer.send(topic: topic, partition: partition, key: key, value: value, headers: headers, tag: tag)
    }

    /// Sends a changelog record (a store key's value as of input offset `inputEnd`).
    func sendChange(to changelog: ChangelogPartition, key: [UInt8], value: [UInt8], inputEnd: Int64) throws {
        touched.insert(changelog)
        try send(topic: changelog.topic, partition: changelog.partition, key: key, value: value,
                 headers: [(InBandHeaders.attempt, InBandHeaders.encode(attempt, inputEnd: inputEnd))], tag: changelog.tag)
    }

    /// Sends the markers owed on every partition (at a clean stop or before giving
    /// partitions up, so the next reader needs no resolution).
    func writeOwedMarkers() throws {
        for changelog in unmarked.keys { try writeMarkerIfOwed(changelog) }
    }

    var owesMarkers: Bool { unmarked.values.contains { !$0.isEmpty } }

    /// Attempts known committed but unmarked (stored by the last life, or resolved by a
    /// restore): marked in the next transaction. Attempts already owed are not added twice.
    func owe(_ attempts: [CommitAttempt], on changelog: ChangelogPartition) {
        guard guarantee == .exactlyOnce else { return }
        for attempt in attempts where !(unmarked[changelog]?.contains(attempt) ?? false) {
            unmarked[changelog, default: []].append(attempt)
        }
    }

    /// Committed attempts `changelog` still owes a marker for.
    func owed(on changelog: ChangelogPartition) -> [CommitAttempt] { unmarked[changelog] ?? [] }

    /// Forgets what is owed to partitions this thread no longer owns.
    func forget(_ isGone: (ChangelogPartition) -> Bool) {
        unmarked = unmarked.filter { !isGone($0.key) }
    }

    /// A marker is not data: the attempt that carries it owes no marker for it.
    func writeMarkerIfOwed(_ changelog: ChangelogPartition) throws {
        guard guarantee == .exactlyOnce, let attempts = unmarked[changelog], !attempts.isEmpty,
              markedThisAttempt.insert(changelog).inserted else { return }
        try send(topic: changelog.topic, partition: changelog.partition,
                 key: Array("eddy.marker.\(life).\(sequence)".utf8), value: InBandHeaders.encode(marking: attempts),
                 headers: [(InBandHeaders.marker, [])], tag: changelog.tag)
    }

    /// Commits the attempt: `offsets` (next input offsets) become the group's position
    /// together with everything sent. Throws with librdkafka's classification; `isFatal`
    /// means fenced.
    func commit(offsets: [TopicPartition: Int64], consumer: KafkaConsumer) throws {
        switch guarantee {
        case .exactlyOnce:
            if !inTransaction {
                guard !offsets.isEmpty else { return }
                try producer.beginTransaction()
                inTransaction = true
            }
            if !offsets.isEmpty { try producer.sendOffsetsToTransaction(offsets, consumer: consumer) }
            try producer.commitTransaction()
            inTransaction = false
        case .atLeastOnce:
            try producer.flush()
            try consumer.commit(offsets)
        }
        // Markers sent in this attempt are delivered; the attempt's partitions now owe one.
        for changelog in markedThisAttempt { unmarked[changelog] = nil }
        for changelog in touched where guarantee == .exactlyOnce { unmarked[changelog, default: []].append(attempt) }
        markedThisAttempt.removeAll()
        touched.removeAll()
        sequence += 1
    }

    /// Abandons the current attempt after a failed commit: everything sent in it is void
    /// (the dirty state is still dirty and goes out again in the next attempt).
    func abort() {
        if guarantee == .exactlyOnce, inTransaction {
            do { try producer.abortTransaction() } catch { logger.warning("abort transaction: \(error)") }
            inTransaction = false
        }
        markedThisAttempt.removeAll()
        touched.removeAll()
        sequence += 1
    }

    /// The changelog offset just past this producer's last delivered record to `changelog`.
    func checkpoint(of changelog: ChangelogPartition) -> Int64? {
        producer.deliveredOffset(tag: changelog.tag).map { $0 + 1 }
    }

    func poll() { producer.poll() }
}

/// One partition of one store's changelog topic; `tag` identifies it in delivery reports.
struct ChangelogPartition: Hashable {
    let store: Int
    let topic: String
    let partition: Int32

    var tag: Int { (store + 1) << 20 | Int(partition) }
}
