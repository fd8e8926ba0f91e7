import EddyKafka
import EddyState
import Foundation
import Logging

/// Brings one store of one task up to date from its changelog partition: reads from the
/// local checkpoint to the end, lets the `ChangelogResolver` release committed records,
/// and applies them in batched WriteBatches. The new checkpoint (`end`) is the caller's to
/// store, after it has written the keys Redis lacks: stored earlier, a crash in between
/// would forget that Redis lacks them.
struct ChangelogRestore {
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

    let changelog: ChangelogPartition
    let columnFamily: ColumnFamily
    let database: StateDatabase
    let kafka: KafkaConfig
    let usesMarkers: Bool
    let faults: FaultInjection
    let logger: Logger
    static let writeBatchRecords = 10_000
    static let progressInterval = Duration.seconds(2)
    /// A changelog that neither advances nor reaches its end for this long fails the restore.
    static let stallTimeout = Duration.seconds(60)

    /// Restores from `checkpoint` (0: from the beginning).
    func run(from checkpoint: Int64, committedInputOffset: Int64?, redisWatermark: Int64?) throws -> Outcome {
        var checkpoint = checkpoint
        if checkpoint == 0, !database.isEmpty(columnFamily) {
            // State that did not come from this changelog (it was written by an older Eddy):
            // the changelog is the truth.
            logger.warning("\(columnFamily.name) holds state without a changelog checkpoint; rebuilding it from \(changelog.topic)")
            try database.removeAll(columnFamily)
        }
        var kafka = kafka
        kafka["auto.offset.reset"] = "error"  // a checkpoint past the end is reported, not skipped
        var reader = try KafkaPartitionReader(config: kafka, partition: TopicPartition(changelog.topic, changelog.partition), from: checkpoint)
        let batch = ConsumedBatch(capacity: 4096)
        let writeBatch = StateWriteBatch()
        var resolver = ChangelogResolver(usesMarkers: usesMarkers)
        var outcome = Outcome()
        var stale = Set<[UInt8]>()
        let release: (ChangelogResolver.Record) throws -> Void = { record in
            writeBatch.put(columnFamily, key: record.key, value: record.value)
            outcome.records += 1
            if record.inputEnd > (redisWatermark ?? -1) { stale.insert(record.key) }
            if writeBatch.count >= Self.writeBatchRecords {
                try database.write(writeBatch)
                writeBatch.clear()
                faults.maybeCrash(at: .duringRestore)
            }
        }

        let start = ContinuousClock.now
        var lastProgress = start, lastAdvance = start
        var position = checkpoint
        var end: Int64?
        while end == nil {
            reader.read(into: batch, timeoutMs: 500)
            for i in 0..<batch.count {
                let message = batch[i]
                if message.isPartitionEOF {
                    end = message.offset
                    break
                }
                if message.errorCode == KafkaPartitionReader.offsetOutOfRange, checkpoint > 0 {
                    // The changelog was emptied (by `eddy reset` on another host): the local
                    // state describes a past that no longer happened.
                    logger.warning("\(changelog.topic)-\(changelog.partition) ends before the local checkpoint \(checkpoint); rebuilding \(columnFamily.name)")
                    try database.removeAll(columnFamily)
                    checkpoint = 0
                    position = 0
                    batch.release()  // messages go back before their client is destroyed
                    reader = try KafkaPartitionReader(config: kafka, partition: reader.partition, from: 0)
                    break
                }
                if message.isError {
                    logger.warning("restoring \(changelog.topic)-\(changelog.partition): \(message.errorMessage)")
                    continue
                }
                position = message.offset + 1
                lastAdvance = .now
                if message.header(InBandHeaders.marker) != nil {
                    if let attempts = InBandHeaders.decodeMarker(Array(message.value)) { try resolver.mark(attempts, release: release) }
                } else if let header = message.header(InBandHeaders.attempt), let (attempt, inputEnd) = InBandHeaders.decodeAttempt(header),
                          let key = message.key {
                    try resolver.add(.init(key: Array(key), value: Array(message.value), inputEnd: inputEnd), of: attempt, release: release)
                }
            }
            let now = ContinuousClock.now
            if now - lastAdvance > Self.stallTimeout {
                throw RuntimeError("restoring \(changelog.topic)-\(changelog.partition): no progress for \(Self.stallTimeout) at offset \(position)")
            }
            if now - lastProgress >= Self.progressInterval {
                lastProgress = now
                logProgress(position: position, checkpoint: checkpoint, high: reader.cachedHighWatermark, since: start)
            }
        }
        batch.release()
        outcome.resolved = try resolver.finish(committedInputOffset: committedInputOffset, release: release)
        outcome.dropped = resolver.dropped
        outcome.end = end!
        try database.write(writeBatch)
        if outcome.records > 0 { faults.maybeCrash(at: .duringRestore) }
        outcome.staleInRedis = Array(stale)
        if end! > checkpoint {
            let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
            logger.info("restored \(changelog.topic)-\(changelog.partition) offsets \(checkpoint)..<\(end!): \(outcome.records) records applied, \(outcome.dropped) of uncommitted attempts dropped, in \(String(format: "%.2f", seconds)) s (\(Int(Double(end! - checkpoint) / max(seconds, 0.001))) records/s)")
        }
        return outcome
    }

    private func logProgress(position: Int64, checkpoint: Int64, high: Int64?, since start: ContinuousClock.Instant) {
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        let rate = Double(position - checkpoint) / max(seconds, 0.001)
        var line = "restoring \(changelog.topic)-\(changelog.partition): at \(position)"
        if let high, high > position {
            line += " of \(high), \(Int(rate)) records/s, ETA \(String(format: "%.0f", Double(high - position) / max(rate, 1))) s"
        }
        logger.info("\(line)")
    }
}

func encodeOffset(_ offset: Int64) -> [UInt8] { withUnsafeBytes(of: offset.littleEndian, Array.init) }

func decodeOffset(_ bytes: [UInt8]) -> Int64? {
    guard bytes.count == 8 else { return nil }
    return Int64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })
}
