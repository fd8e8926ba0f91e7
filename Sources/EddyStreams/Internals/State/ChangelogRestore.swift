import EddyKafka
import EddyState
import Foundation
import Logging

/// Brings stores up to date from their changelog partitions (Kafka Streams'
/// `StoreChangelogReader`): reads each from its local checkpoint to its end — all of them
/// through one reader, so their fetches overlap — lets a `ChangelogResolver` per partition
/// release the committed records, and applies them in batched WriteBatches. It runs in
/// steps (`step(for:)`) so the stream thread's loop goes on polling meanwhile. The new
/// checkpoints (`end`) are the caller's to store, after it has written the keys Redis
/// lacks: stored earlier, a crash in between would forget that Redis lacks them.
final class ChangelogRestore {
    /// One store of one task to bring up to date.
    struct Target {
        let changelog: InternalPartition
        let columnFamily: ColumnFamily
        /// Where the local state stopped (0: from the beginning).
        let checkpoint: Int64
        /// The task's committed position (its input partition's committed offset, plus for a
        /// source task its source repartition partition's).
        let committedInputOffset: Int64?
        /// A source task's committed source repartition offset (0: none).
        var committedRekeyedOffset: Int64 = 0
        /// The position the task's Redis view was last written at.
        let redisWatermark: Int64?
    }

    struct Outcome {
        var records = 0
        var dropped = 0
        /// Keys whose restored value is newer than Redis (written after the task's Redis
        /// watermark): the view must be written again.
        var staleInRedis: [[UInt8]] = []
        /// Attempts released because the group is at their end: they need a marker.
        var resolved: [CommitAttempt] = []
        /// The changelog's end: the new checkpoint.
        var end: Int64 = 0
    }

    private let database: StateDatabase
    private let usesMarkers: Bool
    private let faults: FaultInjection
    private let logger: Logger
    static let writeBatchRecords = 50_000
    static let progressInterval = Duration.seconds(2)
    /// Changelogs that neither advance nor reach their ends for this long fail the restore.
    static let stallTimeout = Duration.seconds(60)

    /// The state of one target while it is read.
    private final class Progress {
        let target: Target
        var from: Int64
        var position: Int64
        var end: Int64?
        var resolver: ChangelogResolver
        var outcome = Outcome()
        var stale = Set<[UInt8]>()
        /// Released records not yet written: keys and values back to back.
        var unwrittenBytes: [UInt8] = []
        var unwritten: [(start: Int, keyEnd: Int, valueEnd: Int)] = []

        func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            let start = unwrittenBytes.count
            unwrittenBytes.append(contentsOf: key)
            let keyEnd = unwrittenBytes.count
            unwrittenBytes.append(contentsOf: value)
            unwritten.append((start, keyEnd, unwrittenBytes.count))
        }

        /// Puts the unwritten records into `batch` sorted by key; stable, so of two values
        /// of one key the later is put later and wins. An empty value deletes the key (no
        /// store writes empty values; a repartition intake deletes what it released).
        func putUnwritten(into batch: StateWriteBatch) {
            unwrittenBytes.withUnsafeBytes { all in
                func key(_ i: Int) -> UnsafeRawBufferPointer {
                    UnsafeRawBufferPointer(rebasing: all[unwritten[i].start..<unwritten[i].keyEnd])
                }
                let order = unwritten.indices.sorted { a, b in
                    let ka = key(a), kb = key(b)
                    let c = memcmp(ka.baseAddress!, kb.baseAddress!, min(ka.count, kb.count))
                    return c != 0 ? c < 0 : ka.count != kb.count ? ka.count < kb.count : a < b
                }
                for i in order {
                    let value = UnsafeRawBufferPointer(rebasing: all[unwritten[i].keyEnd..<unwritten[i].valueEnd])
                    if value.isEmpty {
                        batch.delete(target.columnFamily, key: key(i))
                    } else {
                        batch.put(target.columnFamily, key: key(i), value: value)
                    }
                }
            }
            unwrittenBytes.removeAll(keepingCapacity: true)
            unwritten.removeAll(keepingCapacity: true)
        }

        init(_ target: Target, usesMarkers: Bool) {
            self.target = target
            from = target.checkpoint
            position = target.checkpoint
            resolver = ChangelogResolver(usesMarkers: usesMarkers)
        }

        var partition: TopicPartition { TopicPartition(target.changelog.topic, target.changelog.partition) }
        /// Where to read next; from the start, the log's beginning (wherever that is).
        var startOffset: Int64 { position == 0 ? KafkaOffset.beginning : position }
    }

    private let restores: [Progress]
    private let reader: KafkaPartitionReader?
    private let batch = ConsumedBatch(capacity: 4096)
    private let writeBatch = StateWriteBatch()
    private var unwrittenCount = 0
    private let start = ContinuousClock.now
    private var lastProgress = ContinuousClock.now
    private var lastAdvance = ContinuousClock.now
    /// Targets whose end is not reached yet.
    private var open: Int

    /// Starts reading `targets`' changelogs.
    init(targets: [Target], database: StateDatabase, kafka: KafkaConfig, usesMarkers: Bool, faults: FaultInjection, logger: Logger) throws {
        self.database = database
        self.usesMarkers = usesMarkers
        self.faults = faults
        self.logger = logger
        restores = targets.map { Progress($0, usesMarkers: usesMarkers) }
        open = restores.count
        for r in restores where r.from == 0 && !database.isEmpty(r.target.columnFamily) {
            // State that did not come from this changelog (written by an older Eddy): the
            // changelog is the truth.
            logger.warning("\(r.target.columnFamily.name) holds state without a changelog checkpoint; rebuilding it from \(r.target.changelog.topic)")
            try database.removeAll(r.target.columnFamily)
        }
        guard !restores.isEmpty else {
            reader = nil
            return
        }
        var kafka = kafka
        kafka["auto.offset.reset"] = "error"  // a checkpoint past the end is reported, not skipped
        reader = try KafkaPartitionReader(config: kafka, from: restores.map { ($0.partition, $0.startOffset) })
    }

    deinit { batch.release() }

    /// Writes what was released, each store's keys in order: RocksDB's memtable inserts
    /// sorted keys several times faster than random ones (its skip list reuses the last
    /// insert's position), and that insert was most of a restore's time.
    private func write() throws {
        writeBatch.clear()
        for r in restores where !r.unwritten.isEmpty { r.putUnwritten(into: writeBatch) }
        unwrittenCount = 0
        try database.write(writeBatch)
    }

    private func release(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, inputEnd: Int64, into r: Progress) throws {
        r.append(key: key, value: value)
        unwrittenCount += 1
        r.outcome.records += 1
        if inputEnd > (r.target.redisWatermark ?? -1) { r.stale.insert(Array(key)) }
        if unwrittenCount >= Self.writeBatchRecords {
            try write()
            faults.maybeCrash(at: .duringRestore)
        }
    }

    /// Reads for about `duration`; returns each target's outcome once every changelog is
    /// at its end, nil while reading goes on.
    func step(for duration: Duration) throws -> [Outcome]? {
        guard let reader else { return [] }
        let stepEnd = ContinuousClock.now + duration
        while open > 0 {
            if ContinuousClock.now >= stepEnd { return nil }
            try read(reader)
        }
        return try finish()
    }

    /// Reads to the end of every changelog.
    func run() throws -> [Outcome] {
        while true {
            if let outcomes = try step(for: .seconds(3600)) { return outcomes }
        }
    }

    private func read(_ reader: KafkaPartitionReader) throws {
            reader.read(into: batch, timeoutMs: 100)
            defer { batch.release() }
            for i in 0..<batch.count {
                let message = batch[i]
                guard let index = reader.index(of: message) else {
                    if message.isError { logger.warning("restoring: \(message.errorMessage)") }
                    continue
                }
                let r = restores[index]
                if message.isPartitionEOF {
                    if r.end == nil { open -= 1 }
                    r.end = message.offset
                    continue
                }
                if message.errorCode == KafkaPartitionReader.offsetOutOfRange {
                    // The changelog was emptied (by `eddy reset` on another host): the local
                    // state describes a past that no longer happened.
                    logger.warning("\(r.partition) ends before the local checkpoint \(r.from); rebuilding \(r.target.columnFamily.name)")
                    try database.removeAll(r.target.columnFamily)
                    r.from = 0
                    r.position = 0
                    r.resolver = ChangelogResolver(usesMarkers: usesMarkers)
                    r.outcome = Outcome()
                    r.stale.removeAll()
                    r.unwritten.removeAll()
                    r.unwrittenBytes.removeAll()
                    batch.release()  // messages go back before the assignment changes
                    try reader.assign(restores.filter { $0.end == nil }.map { ($0.partition, $0.startOffset) })
                    break
                }
                if message.isError {
                    logger.warning("restoring \(r.partition): \(message.errorMessage)")
                    continue
                }
                r.position = message.offset + 1
                lastAdvance = .now
                // Data records (the common case) first: one header lookup each.
                if let header = message.header(InBandHeaders.attempt) {
                    if let (attempt, inputEnd, rekeyedEnd) = InBandHeaders.decodeAttempt(header), let key = message.key {
                        try r.resolver.add(key: key, value: message.value, inputEnd: inputEnd, rekeyedEnd: rekeyedEnd, of: attempt) { try release(key: $0, value: $1, inputEnd: $2, into: r) }
                    }
                } else if message.header(InBandHeaders.marker) != nil, let marking = InBandHeaders.decodeMarking(Array(message.value)) {
                    try r.resolver.mark(marking) { try release(key: $0, value: $1, inputEnd: $2, into: r) }
                }
            }
            let now = ContinuousClock.now
            if now - lastAdvance > Self.stallTimeout {
                let stuck = restores.filter { $0.end == nil }.map { "\($0.partition)@\($0.position)" }
                throw RuntimeError("restoring: no progress for \(Self.stallTimeout) on \(stuck)")
            }
            if now - lastProgress >= Self.progressInterval {
                lastProgress = now
                logProgress(restores, reader: reader, since: start)
            }
    }

    private func finish() throws -> [Outcome] {
        for r in restores {
            r.outcome.resolved = try r.resolver.finish(committedInputOffset: r.target.committedInputOffset, committedRekeyedOffset: r.target.committedRekeyedOffset) {
                try release(key: $0, value: $1, inputEnd: $2, into: r)
            }
            r.outcome.dropped = r.resolver.dropped
            r.outcome.end = r.end!
            r.outcome.staleInRedis = Array(r.stale)
        }
        try write()
        let records = restores.reduce(0) { $0 + $1.outcome.records }
        if records > 0 { faults.maybeCrash(at: .duringRestore) }
        let read = restores.reduce(Int64(0)) { $0 + $1.end! - $1.from }
        if read > 0 {
            let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
            let dropped = restores.reduce(0) { $0 + $1.outcome.dropped }
            logger.info("restored \(restores.count) changelog partition(s): \(read) records read, \(records) applied, \(dropped) of uncommitted attempts dropped, in \(String(format: "%.2f", seconds)) s (\(Int(Double(read) / max(seconds, 0.001))) records/s)")
        }
        return restores.map(\.outcome)
    }

    private func logProgress(_ restores: [Progress], reader: KafkaPartitionReader, since start: ContinuousClock.Instant) {
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        let done = restores.reduce(Int64(0)) { $0 + $1.position - $1.from }
        let left = restores.reduce(Int64(0)) { total, r in
            total + max((r.end ?? reader.cachedHighWatermark(r.partition) ?? r.position) - r.position, 0)
        }
        let rate = Double(done) / max(seconds, 0.001)
        logger.info("restoring \(restores.filter { $0.end == nil }.count) of \(restores.count) changelog partition(s): \(done) records read, \(left) to go, \(Int(rate)) records/s, ETA \(String(format: "%.0f", Double(left) / max(rate, 1))) s")
    }
}

func encodeOffset(_ offset: Int64) -> [UInt8] { withUnsafeBytes(of: offset.littleEndian, Array.init) }

func decodeOffset(_ bytes: [UInt8]) -> Int64? {
    guard bytes.count == 8 else { return nil }
    return Int64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })
}
