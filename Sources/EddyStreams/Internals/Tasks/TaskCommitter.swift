import EddyKafka
import EddyRedis
import EddyState
import Foundation
import Logging

/// Commits a stream thread's tasks, in the order the crash tests prove (docs/exactly-once.md):
///
/// 1. Kafka: changelog records of every changed store key, output-topic records, what
///    re-keying nodes send downstream (partials, records), dead letters and the input offsets, in one transaction (exactly-once) or flushed then
///    committed (at-least-once). From here the attempt is durable.
/// 2. Redis view (absolute commands, fenced by input position): a crash before it is
///    repaired by restore, which writes the keys of the changelog tail again.
/// 3. One RocksDB WriteBatch: the new state and each changelog's checkpoint, together.
///
/// 2 and 3 are the commit's tail, written while processing goes on (`CommitTail`); a stop or
/// a revoke also waits for it. Owned by the stream thread.
final class TaskCommitter {
    private let context: RuntimeContext
    private let manager: TaskManager
    private let tail: CommitTail
    private let deadLetters: DeadLetterQueue
    private let cacheShare: WriteBackCacheShare
    private let faults: FaultInjection
    private let logger: Logger
    private let threadID: Int
    /// Set when processing failed mid-record or the producer was fenced: from then on
    /// nothing is committed.
    var failed = false
    /// When the last attempt that had something to commit (or failed) began: the interval
    /// runs from here.
    private(set) var lastCommit = ContinuousClock.now
    /// When the last attempt began, whether or not it found anything to commit.
    private(set) var lastAttempt = ContinuousClock.now
    /// Consecutive failed commits; past `maxFailedCommits` the thread gives up.
    private var failedCommits = 0
    private static let maxFailedCommits = 20
    /// Since when commits fail because the broker cannot be reached (nil: they do not).
    private var kafkaOutageStart: ContinuousClock.Instant?
    /// How long a stop or a rebalance waits for Redis to take a pending commit tail.
    static let tailGraceOnStop = Duration.seconds(5)
    /// Deletes what the commits moved past in the repartition topics the thread reads.
    private let purge: RepartitionPurge

    init(threadID: Int, context: RuntimeContext, manager: TaskManager, tail: CommitTail, deadLetters: DeadLetterQueue,
         cacheShare: WriteBackCacheShare, faults: FaultInjection, logger: Logger) {
        purge = RepartitionPurge(deleter: KafkaRecordDeleter(kafka: KafkaConfig(context.config.kafkaClientProperties)),
                                 interval: .milliseconds(context.config.repartitionPurgeIntervalMs), logger: logger, name: "eddy-repartition-purge-\(threadID)")
        self.threadID = threadID
        self.context = context
        self.manager = manager
        self.tail = tail
        self.deadLetters = deadLetters
        self.cacheShare = cacheShare
        self.faults = faults
        self.logger = logger
    }

    /// Commits, retrying a few times. A failed attempt is aborted and leaves everything
    /// dirty, so nothing is lost: the next attempt sends it again. After a few failures it
    /// returns to polling (a lost partition is then revoked); a fenced producer or a
    /// commit that keeps failing stops the thread with an error. `markAll` also writes the
    /// markers owed for earlier attempts (before a stop or giving partitions up), so the next
    /// reader of those changelogs has nothing to resolve.
    /// Returns whether everything is committed to Kafka (false: an outage, a pending Redis
    /// tail, or a failure).
    @discardableResult
    func commitUntilDone(producer: StreamProducer?, consumer: KafkaConsumer?, markAll: Bool = false) -> Bool {
        for attempt in 1...3 {
            do {
                if try commit(producer: producer, consumer: consumer, markAll: markAll) { endKafkaOutage() }
                failedCommits = 0
                return !failed
            } catch let error as KafkaError where error.isFatal {
                failed = true
                context.requestStop(failure: "thread \(threadID): the producer was fenced (another process runs with instance id '\(context.config.resolvedInstanceId)'?) and stops without writing again: \(error)")
                return false
            } catch let pending as CommitTailPending {
                // Redis is down: the loop pauses input until the tail is written (CommitTail).
                logger.warning("\(pending)")
                return false
            } catch {
                failedCommits += 1
                context.metrics.commitFailures.add(1, ordering: .relaxed)
                if let cut = error as? StepTimedOut, cut.cutByStop {
                    logger.error("the stop's time for Kafka is over (runtime.stop_timeout_ms): the last commit is given up; its input is processed again by the next start")
                    return false
                } else if Self.isTransient(error) && kafkaOutageStart == nil {
                    kafkaOutageStart = lastCommit  // when the failed attempt began
                    context.metrics.kafkaOutages.add(1, ordering: .relaxed)
                    logger.warning("Kafka unavailable, commits wait (everything stays pending and is retried): \(error)")
                } else {
                    logger.error("commit failed (attempt \(attempt)): \(error)")
                }
                // An unreachable broker is waited out, however long: each attempt is
                // aborted and everything stays pending. Only other errors, over and over,
                // stop the thread.
                if failedCommits >= Self.maxFailedCommits && !Self.isTransient(error) {
                    failed = true
                    context.requestStop(failure: "thread \(threadID): \(failedCommits) commits in a row failed, last: \(error)")
                    return false
                }
                // A step that missed its deadline has waited long already: back to polling.
                if error is StepTimedOut || (context.stopRequested && attempt >= 2) { break }
                Thread.sleep(forTimeInterval: 0.2 * Double(attempt))
            }
        }
        logger.error("commit not done yet; uncommitted records stay pending (or are processed again after a restart)")
        return false
    }

    private func endKafkaOutage() {
        guard let start = kafkaOutageStart else { return }
        kafkaOutageStart = nil
        let elapsed = ContinuousClock.now - start
        context.metrics.kafkaOutageMicros.add(Int(elapsed / .microseconds(1)), ordering: .relaxed)
        logger.notice("Kafka available again after \(elapsed.seconds) s: committed")
    }

    /// Errors an unreachable or restarting broker causes, which a later attempt gets past.
    private static func isTransient(_ error: Error) -> Bool {
        if error is StepTimedOut { return true }
        guard let error = error as? KafkaError else { return false }
        return error.isRetriable || error.requiresAbort || error.isTransportFailure
    }

    /// Returns whether a Kafka commit happened (false: nothing to commit, or an outage).
    private func commit(producer: StreamProducer?, consumer: KafkaConsumer?, markAll: Bool) throws -> Bool {
        let committed = try commitAttempt(producer: producer, consumer: consumer, markAll: markAll)
        if markAll { try tail.finish(within: Self.tailGraceOnStop) }
        return committed
    }

    private func commitAttempt(producer: StreamProducer?, consumer: KafkaConsumer?, markAll: Bool) throws -> Bool {
        let previousCommit = lastCommit
        lastAttempt = .now
        lastCommit = lastAttempt
        guard !failed, let producer, let consumer else { return false }
        // The previous tail must be written before the next commit's tail can be built: in
        // an outage nothing is committed (input is paused), and nothing is lost.
        guard tail.waitUnlessFailing() else { return false }
        flagTasksRedisLost(tail.takeMissingWatermarks())
        let dirtyTasks = manager.tasks.values.filter(\.hasUncommittedWork)
        // Nothing to commit leaves the interval running from the last commit: the first
        // record after a quiet spell is committed as soon as it is processed, not up to an
        // interval later.
        guard !dirtyTasks.isEmpty || producer.owesRepartitionRecords || (markAll && producer.owesMarkers) else {
            lastCommit = previousCommit
            return false
        }
        let start = ContinuousClock.now
        let inputPartitions = Set(dirtyTasks.flatMap { [$0.partition] + ($0.rekeyedPartition.map { [$0] } ?? []) })
        let committedOffsets = Self.offsets(of: dirtyTasks)
        // Whether the attempt changes state or Redis (not only offsets): fault points care.
        let changesState = dirtyTasks.contains(where: \.changesState)
        do {
            // Resolutions before any partial: downstream must read them first.
            try producer.writeResolutions()
            // Repartition markers in every attempt: downstream tasks hold records until then.
            try producer.writeOwedMarkers { markAll || $0.isRepartition }
            for task in dirtyTasks {
                try task.sendChanges(through: producer)
                try task.sendTopicRecords(through: producer, partitionCounts: context.outputPartitionCounts)
                for output in task.outputs { try send(output, of: task, through: producer) }
            }
            try deadLetters.send(for: inputPartitions, through: producer)
            if changesState, faults.isArmed(at: .beforeKafkaCommit) {
                try producer.flush()  // the records reach the broker, in a transaction that never commits
                faults.maybeCrash(at: .beforeKafkaCommit)
            }
            try producer.commit(offsets: committedOffsets, consumer: consumer)
        } catch {
            producer.abort()
            throw error
        }
        purge.committed(committedOffsets.filter { $0.key.topic != manager.sourceTopic })
        for task in dirtyTasks where !task.outputs.isEmpty { task.clearOutputs() }
        for repartition in manager.repartitionPartitions {
            if let end = producer.checkpoint(of: repartition) { context.tracker.wrote(repartition.topicPartition, upTo: end) }
        }
        if changesState { faults.maybeCrash(at: .afterKafkaCommit) }
        context.metrics.addDeadLetters(deadLetters.committed(for: inputPartitions))
        let kafkaDone = ContinuousClock.now

        // The previous tail is written: its entries may leave the cache, RocksDB has them.
        try tail.finish()
        cacheShare.evictIfOver(manager.tasks.values)
        var view = RedisViewWriter()
        let writeBatch = tail.nextBatch()
        do {
            // Every view first: a failure leaves no task marked clean without its tail.
            for task in dirtyTasks {
                let wholeState = task.rematerialize
                if wholeState { context.metrics.rematerializedTasks.add(1, ordering: .relaxed) }
                try task.renderView(into: &view)
                view.fence(watermark: manager.watermarkKey(task.partition), offset: task.position, wholeState: wholeState)
            }
        } catch {
            // The attempt is committed in Kafka; a restart restores it from the changelogs
            // and writes Redis from there. Going on here could lose it.
            failed = true
            context.requestStop(failure: "thread \(threadID): cannot prepare the Redis view of a committed attempt (a restart writes it from the changelogs): \(error)")
            return true
        }
        for task in dirtyTasks {
            if task.firstFencedOffset == nil { task.firstFencedOffset = task.position }
            writeBatch.put(manager.offsets, key: TaskManager.inputKey(task.partition), value: encodeOffset(task.position))
            task.writeState(to: writeBatch)
            for (_, changelog) in task.stores {
                manager.putChangelogPosition(changelog, checkpoint: producer.checkpoint(of: changelog), owed: producer.owed(on: changelog), into: writeBatch)
            }
        }
        tail.submit(view: view, batch: writeBatch)
        logger.debug("commit: Kafka in \(kafkaDone - start), then \(view.commandCount) Redis writes and \(writeBatch.count) state puts prepared in \(ContinuousClock.now - kafkaDone)")
        context.metrics.recordCommitSucceeded(micros: Int((ContinuousClock.now - start) / .microseconds(1)))
        return true
    }

    /// Sends what a re-keying node gathered to the partitions owning their keys, and an
    /// empty record to every other partition: each committed attempt reaches every
    /// downstream task, so each sees an unbroken chain of upstream ranges (`RepartitionIntake`).
    private func send(_ output: any RepartitionOutput, of task: StreamTask, through producer: StreamProducer) throws {
        let start = task.combinedSince
        let count = context.partitionCount
        var reached = [Bool](repeating: false, count: count)
        let upstream = task.partition.partition
        try output.forEachRecord { key, value in
            let q = output.partition(of: key, count: count)
            reached[Int(q)] = true
            try producer.sendPartial(to: output.edge.partition(q), key: key, value: value, upstream: upstream, start: start, end: task.position, rekeyedEnd: task.rekeyedNextOffset, streamTime: task.streamTime)
        }
        for q in 0..<count where !reached[q] {
            try producer.sendPartial(to: output.edge.partition(Int32(q)), key: nil, value: [], upstream: upstream, start: start, end: task.position, rekeyedEnd: task.rekeyedNextOffset, streamTime: task.streamTime)
        }
    }

    /// The group offsets a commit moves: each task's input partition, and a source task's
    /// partition of the source repartition topic.
    static func offsets(of tasks: [StreamTask]) -> [TopicPartition: Int64] {
        var offsets: [TopicPartition: Int64] = [:]
        for task in tasks {
            offsets[task.partition] = task.nextOffset
            if let rekeyed = task.rekeyedPartition { offsets[rekeyed] = task.rekeyedNextOffset }
        }
        return offsets
    }

    /// Tasks whose watermark Redis does not have write their whole state in the next
    /// commit, which creates it (`RedisViewWriter`): Redis lost the application's keys, or
    /// the task is new (its first write finds none; that is no loss, and not logged as one).
    private func flagTasksRedisLost(_ watermarks: [[UInt8]: Int64]) {
        guard !watermarks.isEmpty else { return }
        var flagged: [String] = []
        for task in manager.tasks.values where !task.rematerialize {
            guard let offset = watermarks[manager.watermarkKey(task.partition)] else { continue }
            task.rematerialize = true
            if offset != task.firstFencedOffset || task.openedWithState { flagged.append(task.partition.description) }
        }
        if !flagged.isEmpty {
            logger.warning("Redis lost the keys of \(flagged.sorted()) (their watermarks vanished: restarted without its data, flushed or evicted): writing their whole state to Redis again")
        }
    }
}
