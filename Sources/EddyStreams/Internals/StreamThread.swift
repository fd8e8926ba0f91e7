import EddyKafka
import EddyRedis
import EddyState
import Foundation
import Logging

/// A stream thread: its own group consumer, producer (transactional under exactly-once) and
/// Redis connection, and the tasks of the partitions assigned to it, driven by one
/// poll → process → commit loop on batches (no per-record async hops).
///
/// `@unchecked Sendable`: it is handed to the OS thread that runs it and touched only from
/// there (librdkafka calls the rebalance listener inside that thread's `poll`/`close`).
final class StreamThread: RebalanceListener, @unchecked Sendable {
    let id: Int
    private let context: RuntimeContext
    private let topology: CompiledTopology
    private var logger: Logger
    private var consumer: KafkaConsumer?
    private var producer: StreamProducer?
    private let deadLetters: DeadLetterQueue
    private let decoder: RecordDecoder
    private let manager: TaskManager
    /// `manager.topics`' index of the source repartition topic.
    private let rekeyedTopicIndex: Int
    private let committer: TaskCommitter
    /// librdkafka topic handle → topic index, learnt on first sight (no string per record).
    private var topicIndexes: [(handle: OpaquePointer, index: Int)] = []
    private let batch: ConsumedBatch
    /// Writes each commit's Redis view and RocksDB batch while processing goes on.
    private let tail: CommitTail
    private var endReached: Set<Int32> = []
    private let cacheShare: WriteBackCacheShare
    private let watch: ThreadWatch
    private var paused = PausedPartitions()
    /// Keeps the thread's copies of the global tables current.
    private var tableReader: GlobalTableReader?
    let finished = DispatchSemaphore(value: 0)

    init(id: Int, context: RuntimeContext) throws {
        self.id = id
        self.context = context
        topology = context.topology
        var logger = context.logger
        logger[metadataKey: "thread"] = "\(id)"
        self.logger = logger
        let config = context.config
        let redis = try RedisConnection(host: config.redisHost, port: config.redisPort, timeoutMs: config.redisTimeoutMs, credentials: config.redisCredentials)
        deadLetters = DeadLetterQueue(topic: topology.topology.deadLetterTopic)
        decoder = RecordDecoder(topology)
        batch = ConsumedBatch(capacity: config.pollBatchSize)
        let faults = FaultInjection()
        tail = CommitTail(redis: redis, database: context.database, metrics: context.metrics, faults: faults,
                          logger: logger, name: "eddy-commit-tail-\(id)")
        cacheShare = WriteBackCacheShare(bytes: config.memoryBudget.writeBackCacheBytesPerThread,
                                         maxEntries: config.cacheMaxEntries, metrics: context.metrics)
        watch = ThreadWatch(metrics: context.metrics, logger: logger)
        manager = try TaskManager(context: context, redis: redis, tail: tail, faults: faults, deadLetters: deadLetters, logger: logger)
        rekeyedTopicIndex = manager.rekeyedTopicIndex
        committer = TaskCommitter(threadID: id, context: context, manager: manager, tail: tail, deadLetters: deadLetters,
                                  cacheShare: cacheShare, faults: faults, logger: logger)
    }

    func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "eddy-stream-\(id)"
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func run() {
        let config = context.config
        do {
            producer = try StreamClients.producer(thread: id, context: context, logger: logger)
        } catch {
            context.requestStop(failure: "thread \(id): cannot start the producer: \(error)")
            return
        }
        do {
            // Tables first, whole: the group is joined (and records arrive) once they are loaded.
            tableReader = try GlobalTableReader.loaded(manager.globalTables, context: context, logger: logger)
            consumer = try StreamClients.consumer(thread: id, context: context, topics: manager.topics, listener: self)
        } catch {
            context.requestStop(failure: "thread \(id): cannot start its consumers (the tables' reader, then the group's): \(error)")
            return
        }
        let interval = Duration.milliseconds(config.commitIntervalMs)
        // Where the thread's time goes, logged at the end: waiting for records, running
        // the topology, committing.
        var polling = Duration.zero, processing = Duration.zero, committing = Duration.zero
        while !context.stopRequested {
            do {
                let opened = try manager.restoreStep(producer: producer!)
                if !opened.isEmpty {
                    logger.info("assigned \(opened.map(\.partition.description).sorted()), starting at \(opened.map { "\($0.partition)@\($0.nextOffset)" }.sorted())")
                }
            } catch {
                committer.failed = true
                context.requestStop(failure: "thread \(id): cannot open state for \(manager.restoringPartitions.map(\.description).sorted()): \(error)")
                break
            }
            if let consumer { paused.update(consumer, redisOutage: tail.inOutage, restoring: manager.restoringPartitions, logger: logger) }
            giveUpCatchingUpInLongOutage()
            let t0 = ContinuousClock.now
            consumer!.poll(into: batch, timeoutMs: pollTimeoutMs(interval: interval))
            let t1 = ContinuousClock.now
            tableReader?.poll()
            do {
                try processBatch()
            } catch {
                // A record may be half-applied: commit nothing more, so the restart resumes
                // from the last commit. (Bad data never lands here: it is dead-lettered.)
                committer.failed = true
                context.requestStop(failure: "thread \(id): cannot process records: \(error)")
                break
            }
            producer!.poll()
            let t2 = ContinuousClock.now
            polling += t1 - t0
            processing += t2 - t1
            watch.updateLag(now: t2, tasks: manager.tasks.values, consumer: consumer)
            // Due an interval after the last commit, at once when work arrives after a quiet
            // interval; an attempt that finds nothing is repeated only after an interval.
            let due = t2 - committer.lastCommit >= interval && (hasUncommittedWork || t2 - committer.lastAttempt >= interval)
            if !paused.inOutage && (due || cacheShare.isFull(manager.tasks.values) || manager.outputsPileUp || finishesEarly(now: t2)) {
                commitUntilDone()
                committing += ContinuousClock.now - t2
            }
            if context.untilCaughtUp {
                for task in manager.tasks.values {
                    if task.intake != nil { context.tracker.consumed(task.partition, upTo: task.nextOffset) }
                    if let rekeyed = task.rekeyedPartition { context.tracker.consumed(rekeyed, upTo: task.rekeyedNextOffset) }
                }
                context.tracker.setSettled(thread: id, isSettled)
                if context.tracker.allCaughtUp { context.requestStop() }
            }
            watch.warnIfUnassignedTooLong(idle: manager.isIdle)
        }
        batch.release()
        let committed = commitUntilDone(markAll: true)
        if !tail.isIdle {
            // Redis did not take the last commit in time: its changes are in Kafka, and the
            // next start restores them from the changelogs and writes them to Redis.
            tail.abandon()
            committer.failed = true
            context.requestStop(failure: "thread \(id): stopped with the last commit not yet in Redis (Redis unavailable); the next start writes it from the changelogs")
        } else if !committed && !committer.failed {
            // Nothing of it is in Kafka or Redis, and RocksDB holds only committed attempts.
            context.requestStop(failure: "thread \(id): stopped with input not committed (the last commit failed or ran out of runtime.stop_timeout_ms; see above); the next start processes it again from the last commit")
        }
        logger.info("time spent: waiting for records \(polling.seconds) s, processing \(processing.seconds) s, committing \(committing.seconds) s")
        // Leaving runs the revoke callback, which commits: not against a broker that just
        // refused the last commit.
        if context.config.leaveGroupOnClose && committed {
            consumer!.close()  // revokes the assignment: commits (nothing left) and leaves the group
        } else {
            consumer!.stopWithoutLeaving()  // everything is committed; see RuntimeConfig.leaveGroupOnClose
        }
        consumer = nil
    }

    /// How long the next poll may wait for a record. While stores restore, polling only
    /// keeps the membership: not at all. With work to commit, no longer than until the
    /// commit falls due, so it is made at the interval rather than after a poll's wait.
    private func pollTimeoutMs(interval: Duration) -> Int32 {
        if manager.isRestoring { return 0 }
        let idleWait: Int32 = 100
        guard !paused.inOutage, hasUncommittedWork else { return idleWait }
        let due = interval - (ContinuousClock.now - committer.lastCommit)
        return Int32(clamping: min(max(Int(due / .milliseconds(1)), 1), Int(idleWait)))
    }

    /// Something a commit would send: a task's changes or offsets, or re-keyed records owed.
    private var hasUncommittedWork: Bool {
        manager.tasks.values.contains(where: \.hasUncommittedWork) || producer?.owesRepartitionRecords == true
    }

    @discardableResult
    private func commitUntilDone(markAll: Bool = false) -> Bool {
        defer { watch.committed() }
        return committer.commitUntilDone(producer: producer, consumer: consumer, markAll: markAll)
    }

    /// How long `--until-caught-up` waits for Redis to take a commit. A long-running process
    /// waits out any outage; a run that is meant to end must end with its reason instead of
    /// hanging (a full Redis does not empty itself).
    private static let untilCaughtUpOutageLimit = Duration.seconds(30)

    private func giveUpCatchingUpInLongOutage() {
        guard context.untilCaughtUp, let outage = tail.outage, outage.duration >= Self.untilCaughtUpOutageLimit else { return }
        context.requestStop(failure: "thread \(id): cannot write the final state to Redis: the last commit not yet in Redis after \(outage.duration.seconds) s of trying: \(outage.error)")
    }

    /// With --until-caught-up, a thread whose source partitions are all at their end
    /// commits at once rather than at the next interval (as a stopping Quix or Kafka
    /// Streams application commits on close); at most every 50 ms while re-keyed records
    /// still wait for their markers.
    private func finishesEarly(now: ContinuousClock.Instant) -> Bool {
        context.untilCaughtUp && now - committer.lastAttempt >= .milliseconds(50) && !manager.tasks.isEmpty
            && manager.tasks.values.allSatisfy { $0.intake != nil || endReached.contains($0.partition.partition) } && !isSettled
    }

    /// Nothing of this thread's is uncommitted, restoring or waiting for another task: with
    /// every source partition at its end, the run is done once every thread is settled.
    private var isSettled: Bool {
        tail.isIdle && !manager.isRestoring && !(producer?.owesRepartitionRecords ?? false)
            && manager.tasks.values.allSatisfy { !$0.hasUncommittedWork && $0.intake?.isSettled != false && $0.rekeyIntake?.isSettled != false }
    }

    // MARK: processing

    private func topicIndex(of message: KafkaMessage) -> Int? {
        guard let handle = message.topicHandle else { return nil }
        for known in topicIndexes where known.handle == handle { return known.index }
        guard let index = manager.topics.firstIndex(of: message.topic) else { return nil }
        topicIndexes.append((handle, index))
        return index
    }

    private func processBatch() throws {
        var received = 0, processed = 0
        for i in 0..<batch.count {
            let message = batch[i]
            let topic = topicIndex(of: message)
            if message.isError {
                if message.isPartitionEOF {
                    if topic == 0, Int(message.partition) < context.partitionCount, manager.taskLookup[0][Int(message.partition)] != nil {
                        endReached.insert(message.partition)
                        context.tracker.reachedEnd(message.partition)
                    }
                } else {
                    logger.warning("consumer: \(message.errorMessage)")
                }
                continue
            }
            // A partition no longer ours, or a record from before a seek: not ours to process.
            guard let topic, Int(message.partition) < context.partitionCount,
                  let task = manager.taskLookup[topic][Int(message.partition)] else { continue }
            if topic == rekeyedTopicIndex {
                // A source record re-keyed to this source task.
                if message.offset >= task.rekeyedNextOffset { try task.receiveRekeyed(message) }
                continue
            }
            guard message.offset >= task.nextOffset else { continue }
            if task.intake != nil {
                try task.receive(message)
                continue
            }
            received += 1
            if !endReached.isEmpty, endReached.remove(message.partition) != nil {
                context.tracker.moved(message.partition)
            }
            if let oldest = task.skipBeforeTimestamp {
                if (message.timestamp ?? .max) < oldest {
                    task.nextOffset = message.offset + 1
                    continue
                }
                task.skipBeforeTimestamp = nil
            }
            let value = message.value
            do {
                try decoder.decode(value)
            } catch {
                deadLetters.add(message, reason: error)
                task.nextOffset = message.offset + 1
                continue
            }
            try task.process(value, decodedBy: decoder, key: message.key, offset: message.offset)
            task.nextOffset = message.offset + 1
            processed += 1
        }
        if received > 0 { context.metrics.noteFirstRecord() }
        context.metrics.recordsIn.add(received, ordering: .relaxed)
        context.metrics.recordsProcessed.add(processed, ordering: .relaxed)
    }

    // MARK: rebalance

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        let owned = partitions.filter { manager.topicIndex(of: $0) != nil && Int($0.partition) < context.partitionCount }
        var start: [TopicPartition: Int64] = [:]
        do {
            // The group's position is the truth under both guarantees: exactly-once commits
            // it with the changelog records, at-least-once after them.
            // A source task also needs where the group stands on its partition of the source
            // repartition topic (assigned with it by the range assignor).
            let partners = manager.rekeyedPartners(of: owned).filter { !owned.contains($0) }
            start = manager.assign(owned, committed: try consumer!.committed(owned + partners))
        } catch {
            committer.failed = true
            context.requestStop(failure: "thread \(id): cannot read the group's offsets for \(owned): \(error)")
        }
        logger.info("given \(partitions.map(\.description).sorted()); opening their tasks (restoring their stores first where needed)")
        return start
    }

    func pausedAtAssignment(_ partitions: [TopicPartition]) -> Set<TopicPartition> {
        paused.startPaused(manager.restoringPartitions)
        return manager.restoringPartitions
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        commitUntilDone(markAll: true)
        if !tail.isIdle {
            // Redis cannot take the last tail: give it up. Safe because the tasks it covered
            // close now (eager rebalancing revokes the whole assignment) and reopen through a
            // restore of their changelogs, which holds the tail's changes.
            tail.abandon()
            if !Set(manager.tasks.keys).isSubset(of: partitions) {
                committer.failed = true
                context.requestStop(failure: "thread \(id): a commit tail was given up in a Redis outage while tasks stay open; restart to restore them")
            }
        }
        let changelogs = manager.revoke(partitions)
        for tp in partitions {
            context.metrics.setLag(tp.description, nil)  // another member reports it now
            if tp.topic == manager.sourceTopic {
                endReached.remove(tp.partition)
                context.tracker.moved(tp.partition)
            }
        }
        producer?.forget(changelogs)
        paused.forget(partitions)
        deadLetters.discard(for: Set(partitions))
        if !partitions.isEmpty { logger.info("revoked \(partitions.map(\.description).sorted())") }
    }
}

extension Duration {
    var seconds: String {
        let (s, attos) = components
        return String(format: "%.2f", Double(s) + Double(attos) / 1e18)
    }
}
