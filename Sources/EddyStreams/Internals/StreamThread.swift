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
    private let redis: RedisConnection
    private let deadLetters: DeadLetterQueue
    private let changelogTopics: [String]
    /// The topics the thread consumes: the source (index 0), then each repartition topic.
    private let topics: [String]
    /// Every partition of every repartition topic (markers may be owed on any of them).
    private let repartitionPartitions: [InternalPartition]
    private let decoder: RecordDecoder
    private var tasks: [TopicPartition: StreamTask] = [:]
    /// The same tasks by topic index and partition: the per-record lookup.
    private var taskLookup: [[StreamTask?]]
    /// librdkafka topic handle → topic index, learnt on first sight (no string per record).
    private var topicIndexes: [(handle: OpaquePointer, index: Int)] = []
    private let offsets: ColumnFamily
    private let batch: ConsumedBatch
    private var view = RedisViewWriter()
    /// Writes each commit's Redis view and RocksDB batch while processing goes on.
    private let tail: CommitTail
    /// Per node: did the current record reach it (a fixed buffer: no exclusivity checks).
    private let passes: UnsafeMutableBufferPointer<Bool>
    private var keyBuffer: [UInt8] = []
    /// The value a recent-values aggregate keeps, decoded.
    private var valueBuffer: [UInt8] = []
    private var endReached: Set<Int32> = []
    private var lastCommit = ContinuousClock.now
    /// Set when processing failed mid-record; from then on nothing is committed.
    private var failed = false
    private let faults = FaultInjection()
    private let sourceTopic: String
    private let cacheShare: WriteBackCacheShare
    let finished = DispatchSemaphore(value: 0)

    init(id: Int, context: RuntimeContext) throws {
        self.id = id
        self.context = context
        topology = context.topology
        sourceTopic = topology.topology.source.topic
        var logger = context.logger
        logger[metadataKey: "thread"] = "\(id)"
        self.logger = logger
        let config = context.config
        redis = try RedisConnection(host: config.redisHost, port: config.redisPort, timeoutMs: config.redisTimeoutMs, credentials: config.redisCredentials)
        deadLetters = DeadLetterQueue(topic: topology.topology.deadLetterTopic)
        changelogTopics = Changelogs.topics(of: topology)
        topics = [sourceTopic] + Repartitions.topics(of: topology)
        repartitionPartitions = topology.repartitioned.flatMap { spec in
            (0..<Int32(context.partitionCount)).map { InternalPartition(store: spec.index, topic: spec.repartitionTopic!, partition: $0, isRepartition: true) }
        }
        taskLookup = Array(repeating: Array(repeating: nil, count: context.partitionCount), count: topics.count)
        decoder = RecordDecoder(topology)
        offsets = try context.database.columnFamily("offsets")
        batch = ConsumedBatch(capacity: config.pollBatchSize)
        passes = .allocate(capacity: max(topology.nodes.count, 1))
        passes.initialize(repeating: false)
        tail = CommitTail(redis: redis, database: context.database, metrics: context.metrics, faults: faults,
                          logger: logger, name: "eddy-commit-tail-\(id)")
        cacheShare = WriteBackCacheShare(bytes: config.memoryBudget.writeBackCacheBytesPerThread,
                                         maxEntries: config.cacheMaxEntries, metrics: context.metrics)
    }

    deinit { passes.deallocate() }

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
            // Stable across restarts of this instance, so a restart fences its own zombie.
            producer = try StreamProducer(config: KafkaConfig(config.memoryBudget.producerProperties(config.kafkaClientProperties)), guarantee: config.processingGuarantee,
                                          transactionalId: "\(topology.topology.application)-\(config.resolvedInstanceId)-\(id)",
                                          stepTimeout: .milliseconds(config.transactionStepTimeoutMs), metrics: context.metrics, logger: logger)
        } catch {
            context.requestStop(failure: "thread \(id): cannot start the producer: \(error)")
            return
        }
        do {
            var props = config.memoryBudget.consumerProperties(config.kafkaClientProperties)
            props["group.id"] = topology.topology.application
            props["client.id"] = "\(topology.topology.application)-\(id)"
            props["session.timeout.ms"] = String(config.sessionTimeoutMs)
            if config.staticMembership { props["group.instance.id"] = "\(config.resolvedInstanceId)-\(id)" }
            if props["max.poll.interval.ms"] == nil { props["max.poll.interval.ms"] = String(max(config.sessionTimeoutMs, 60_000)) }
            consumer = try KafkaConsumer(config: KafkaConfig(props), topics: topics, listener: self)
        } catch {
            context.requestStop(failure: "thread \(id): cannot start the consumer: \(error)")
            return
        }
        let interval = Duration.milliseconds(config.commitIntervalMs)
        // Where the thread's time goes, logged at the end: waiting for records, running
        // the topology, committing.
        var polling = Duration.zero, processing = Duration.zero, committing = Duration.zero
        while !context.stopRequested {
            pauseInputDuringOutage()
            giveUpCatchingUpInLongOutage()
            let t0 = ContinuousClock.now
            consumer!.poll(into: batch, timeoutMs: 100)
            let t1 = ContinuousClock.now
            do {
                try processBatch()
            } catch {
                // A record may be half-applied: commit nothing more, so the restart resumes
                // from the last commit. (Bad data never lands here: it is dead-lettered.)
                failed = true
                context.requestStop(failure: "thread \(id): cannot process records: \(error)")
                break
            }
            producer!.poll()
            let t2 = ContinuousClock.now
            polling += t1 - t0
            processing += t2 - t1
            updateLag(now: t2)
            if !inputPaused && (t2 - lastCommit >= interval || cacheIsFull || finishesEarly(now: t2)) {
                commitUntilDone()
                committing += ContinuousClock.now - t2
            }
            if context.untilCaughtUp {
                for task in tasks.values where task.intake != nil { context.tracker.consumed(task.partition, upTo: task.nextOffset) }
                context.tracker.setSettled(thread: id, isSettled)
                if context.tracker.allCaughtUp { context.requestStop() }
            }
            warnIfUnassignedTooLong()
        }
        batch.release()
        commitUntilDone(markAll: true)
        if !tail.isIdle {
            // Redis did not take the last commit in time: its changes are in Kafka, and the
            // next start restores them from the changelogs and writes them to Redis.
            tail.abandon()
            failed = true
            context.requestStop(failure: "thread \(id): stopped with the last commit not yet in Redis (Redis unavailable); the next start writes it from the changelogs")
        }
        logger.info("time spent: waiting for records \(polling.seconds) s, processing \(processing.seconds) s, committing \(committing.seconds) s")
        if context.config.leaveGroupOnClose {
            consumer!.close()  // revokes the assignment: commits (nothing left) and leaves the group
        } else {
            consumer!.stopWithoutLeaving()  // everything is committed; see RuntimeConfig.leaveGroupOnClose
        }
        consumer = nil
    }

    /// Assigned partitions paused because Redis cannot take the last commit.
    private var inputPaused = false

    /// While the commit tail is stuck in a Redis outage, takes no new work: the assigned
    /// partitions are paused, so the loop only goes on polling (which keeps the group
    /// membership and serves rebalances) until the tail is written. Records fetched before
    /// the pause may still arrive; they are processed, as they would be anyway, and
    /// committed after the outage.
    private func pauseInputDuringOutage() {
        guard let consumer, tail.inOutage != inputPaused else { return }
        do {
            if inputPaused { try consumer.resume(consumer.assignment) } else { try consumer.pause(consumer.assignment) }
            inputPaused.toggle()
        } catch {
            logger.warning("cannot \(inputPaused ? "resume" : "pause") input: \(error)")
        }
    }

    /// How long `--until-caught-up` waits for Redis to take a commit. A long-running process
    /// waits out any outage; a run that is meant to end must end with its reason instead of
    /// hanging (a full Redis does not empty itself).
    private static let untilCaughtUpOutageLimit = Duration.seconds(30)

    private func giveUpCatchingUpInLongOutage() {
        guard context.untilCaughtUp, let outage = tail.outage, outage.duration >= Self.untilCaughtUpOutageLimit else { return }
        context.requestStop(failure: "thread \(id): cannot write the final state to Redis: the last commit not yet in Redis after \(outage.duration.seconds) s of trying: \(outage.error)")
    }

    private var lastLagUpdate = ContinuousClock.now
    private static let lagUpdateInterval = Duration.seconds(1)

    /// Lag from the high watermarks fetch responses carry, once a second whatever commits
    /// do, so a stalled pipeline shows on /metrics as a growing lag.
    private func updateLag(now: ContinuousClock.Instant) {
        guard now - lastLagUpdate >= Self.lagUpdateInterval, let consumer else { return }
        lastLagUpdate = now
        for task in tasks.values {
            let high = consumer.cachedWatermarks(task.partition)?.high
            context.metrics.setLag(task.partition.description, high.map { max($0 - task.nextOffset, 0) })
        }
    }

    /// When the thread last had partitions (or started), and when it last said it has none.
    private var lastAssigned = ContinuousClock.now
    private var lastUnassignedWarning: ContinuousClock.Instant?
    private static let unassignedWarningInterval = Duration.seconds(30)

    /// A thread without partitions is normal when the group has more members than
    /// partitions, but also what a group stuck in a rebalance looks like: say so, so an
    /// operator is not left looking at "processed 0 records".
    private func warnIfUnassignedTooLong() {
        let now = ContinuousClock.now
        if !tasks.isEmpty {
            lastAssigned = now
            lastUnassignedWarning = nil
            return
        }
        guard now - lastAssigned >= Self.unassignedWarningInterval,
              lastUnassignedWarning.map({ now - $0 >= Self.unassignedWarningInterval }) ?? true else { return }
        lastUnassignedWarning = now
        logger.warning("no partitions assigned for \(Int((now - lastAssigned) / .seconds(1))) s: other members hold them all, or the group is stuck in a rebalance (Tansu 0.6.0 can stall after a static member restarts; see README)")
    }

    private var cacheIsFull: Bool { cacheShare.isFull(tasks.values) }

    /// With --until-caught-up, a thread whose source partitions are all at their end
    /// commits at once rather than at the next interval (as a stopping Quix or Kafka
    /// Streams application commits on close); at most every 50 ms while re-keyed records
    /// still wait for their markers.
    private func finishesEarly(now: ContinuousClock.Instant) -> Bool {
        context.untilCaughtUp && now - lastCommit >= .milliseconds(50) && !tasks.isEmpty
            && tasks.values.allSatisfy { $0.intake != nil || endReached.contains($0.partition.partition) } && !isSettled
    }

    /// Nothing of this thread's is uncommitted or waits for another task: with every
    /// source partition at its end, the run is done once every thread is settled.
    private var isSettled: Bool {
        tail.isIdle && !(producer?.owesRepartitionRecords ?? false) && tasks.values.allSatisfy { !$0.hasUncommittedWork && $0.intake?.isSettled != false }
    }

    // MARK: processing

    private func topicIndex(of message: KafkaMessage) -> Int? {
        guard let handle = message.topicHandle else { return nil }
        for known in topicIndexes where known.handle == handle { return known.index }
        guard let index = topics.firstIndex(of: message.topic) else { return nil }
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
                    if topic == 0, Int(message.partition) < context.partitionCount, taskLookup[0][Int(message.partition)] != nil {
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
                  let task = taskLookup[topic][Int(message.partition)], message.offset >= task.nextOffset else { continue }
            if let intake = task.intake {
                try intake.receive(message)
                task.nextOffset = message.offset + 1
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
                deadLetters.add(message, sourceTopic: sourceTopic, reason: error)
                task.nextOffset = message.offset + 1
                continue
            }
            try process(value, in: task)
            task.nextOffset = message.offset + 1
            processed += 1
        }
        if received > 0 { context.metrics.noteFirstRecord() }
        context.metrics.recordsIn.add(received, ordering: .relaxed)
        context.metrics.recordsProcessed.add(processed, ordering: .relaxed)
    }

    @inline(__always)
    private func process(_ value: UnsafeRawBufferPointer, in task: StreamTask) throws {
        let ts = decoder.int64(topology.timestampField, from: value)
        if ts > task.streamTime { task.streamTime = ts }
        for (i, node) in topology.nodes.enumerated() {
            guard node.parent < 0 || passes[node.parent] else {
                passes[i] = false
                continue
            }
            switch node.kind {
            case .pass:
                passes[i] = true
            case .filter(let field, let condition, let values):
                passes[i] = matches(field, condition, values, value)
            case .aggregate(let a):
                passes[i] = true
                try aggregate(value, at: ts, into: task.byAggregate[a])
            }
            if passes[i], !node.sinks.isEmpty {
                collectSinkWrites(node.sinks, value, task)
            }
        }
    }

    private func matches(_ field: Int, _ condition: Topology.Condition, _ values: [[UInt8]], _ value: UnsafeRawBufferPointer) -> Bool {
        switch condition {
        case .exists: return decoder.slots[field].kind != .absent && decoder.slots[field].kind != .null
        case .equals, .oneOf: return values.contains { decoder.equals(field, $0, from: value) }
        case .noneOf: return !values.contains { decoder.equals(field, $0, from: value) }
        }
    }

    @inline(__always)
    private func aggregate(_ value: UnsafeRawBufferPointer, at time: Int64, into table: AggregateTable) throws {
        let spec = table.spec
        var weight: Double?
        if let field = spec.weightField {
            weight = spec.weights.first(where: { decoder.equals(field, $0.0, from: value) })?.1
            // A decay skips records without a weight: they would only add an empty group.
            if weight == nil, case .decay = spec.function { return }
        }
        keyBuffer.removeAll(keepingCapacity: true)
        for id in spec.groupFields { appendDecoded(id, value, lengthPrefixedTo: &keyBuffer) }
        let e = try table.entry(for: keyBuffer)
        switch spec.function {
        case .sums:
            table.add(count: 1, to: e)
            for (j, id) in spec.sumFields.enumerated() where decoder.slots[id].kind == .number {
                table.add(decoder.double(id, from: value), sum: j, to: e)
            }
            if let weight { table.add(weight, sum: spec.sumFields.count, to: e) }
        case .recent(let field, _):
            valueBuffer.removeAll(keepingCapacity: true)
            decoder.appendValue(field, from: value, to: &valueBuffer)
            valueBuffer.withUnsafeBufferPointer { table.addRecent($0, at: time, to: e) }
        case .decay:
            table.addDecayed(weight!, at: Double(time), count: 1, to: e)
        }
    }

    /// Appends a field's value, unescaped, with a 4-byte length before it (a group key part).
    @inline(__always)
    private func appendDecoded(_ id: Int, _ value: UnsafeRawBufferPointer, lengthPrefixedTo out: inout [UInt8]) {
        if decoder.slots[id].escaped {
            var decoded: [UInt8] = []
            decoder.appendValue(id, from: value, to: &decoded)
            decoded.withUnsafeBufferPointer { appendLengthPrefixed($0, to: &out) }
        } else {
            appendLengthPrefixed(decoder.rawBytes(id, from: value), to: &out)
        }
    }

    private func collectSinkWrites(_ sinks: [CompiledSink], _ value: UnsafeRawBufferPointer, _ task: StreamTask) {
        let render: (OutputRef, inout [UInt8]) -> Void = { [decoder] ref, out in
            if case .field(let id) = ref { decoder.appendValue(id, from: value, to: &out) }
        }
        func text(_ ref: OutputRef?) -> [UInt8] {
            var out: [UInt8] = []
            if let ref { render(ref, &out) }
            return out
        }
        for sink in sinks {
            var key: [UInt8] = []
            sink.key.render(into: &key, render)
            var field: [UInt8] = []
            sink.field?.render(into: &field, render)
            if sink.kind == .hash, sink.field == nil {
                for (name, ref) in sink.outputs {
                    task.pendingWrites.set(.init(kind: .hash, key: key, field: name), text(ref), ttl: sink.ttlSeconds)
                }
            } else {
                task.pendingWrites.set(.init(kind: sink.kind, key: key, field: field), text(sink.value), ttl: sink.ttlSeconds)
            }
        }
    }

    // MARK: commit

    /// Consecutive failed commits; past `maxFailedCommits` the thread gives up.
    private var failedCommits = 0
    private static let maxFailedCommits = 20

    /// Commits, retrying a few times. A failed attempt is aborted and leaves everything
    /// dirty, so nothing is lost: the next attempt sends it again. After a few failures it
    /// returns to polling (a lost partition is then revoked); a fenced producer or a
    /// commit that keeps failing stops the thread with an error. `markAll` also writes the
    /// markers owed for earlier attempts (before a stop or giving partitions up), so the next
    /// reader of those changelogs has nothing to resolve.
    private func commitUntilDone(markAll: Bool = false) {
        for attempt in 1...3 {
            do {
                if try commit(markAll: markAll) { endKafkaOutage() }
                failedCommits = 0
                return
            } catch let error as KafkaError where error.isFatal {
                failed = true
                context.requestStop(failure: "thread \(id): the producer was fenced (another process runs with instance id '\(context.config.resolvedInstanceId)'?) and stops without writing again: \(error)")
                return
            } catch let pending as CommitTailPending {
                // Redis is down: the loop pauses input until the tail is written (CommitTail).
                logger.warning("\(pending)")
                return
            } catch {
                failedCommits += 1
                context.metrics.commitFailures.add(1, ordering: .relaxed)
                if Self.isTransient(error) && kafkaOutageStart == nil {
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
                    context.requestStop(failure: "thread \(id): \(failedCommits) commits in a row failed, last: \(error)")
                    return
                }
                // A step that missed its deadline has waited long already: back to polling.
                if error is StepTimedOut || (context.stopRequested && attempt >= 2) { break }
                Thread.sleep(forTimeInterval: 0.2 * Double(attempt))
            }
        }
        logger.error("commit not done yet; uncommitted records stay pending (or are processed again after a restart)")
    }

    /// Since when commits fail because the broker cannot be reached (nil: they do not).
    private var kafkaOutageStart: ContinuousClock.Instant?

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

    /// 1. Kafka: changelog records of every dirty store entry, dead letters and the input
    ///    offsets, in one transaction (exactly-once) or flushed then committed
    ///    (at-least-once). From here the attempt is durable.
    /// 2. Redis view (absolute values, fenced by input position): a crash before it is
    ///    repaired by restore, which writes the keys of the changelog tail again.
    /// 3. One RocksDB WriteBatch: the new state and each changelog's checkpoint, together.
    /// 2 and 3 are the commit's tail, written while processing goes on (`CommitTail`);
    /// `markAll` (stop, revoke) also waits for it.
    /// Returns whether a Kafka commit happened (false: nothing to commit, or an outage).
    private func commit(markAll: Bool = false) throws -> Bool {
        let committed = try commitAttempt(markAll: markAll)
        if markAll { try tail.finish(within: Self.tailGraceOnStop) }
        return committed
    }

    /// How long a stop or a rebalance waits for Redis to take a pending commit tail.
    private static let tailGraceOnStop = Duration.seconds(5)

    private func commitAttempt(markAll: Bool) throws -> Bool {
        lastCommit = .now
        guard !failed, let producer, let consumer else { return false }
        // The previous tail must be written before the next commit's tail can be built: in
        // an outage nothing is committed (input is paused), and nothing is lost.
        guard tail.waitUnlessFailing() else { return false }
        flagTasksRedisLost(tail.takeMissingWatermarks())
        let dirtyTasks = tasks.values.filter(\.hasUncommittedWork)
        guard !dirtyTasks.isEmpty || producer.owesRepartitionRecords || (markAll && producer.owesMarkers) else { return false }
        let start = ContinuousClock.now
        let sourcePartitions = Set(dirtyTasks.filter { $0.intake == nil }.map(\.partition.partition))
        // Whether the attempt changes state or Redis (not only offsets): fault points care.
        let changesState = dirtyTasks.contains {
            !$0.pendingWrites.isEmpty || $0.stores.contains { !$0.dirty.isEmpty } || $0.combiners.contains { $0.entryCount > 0 }
        }
        do {
            // Resolutions before any partial: downstream must read them first.
            try producer.writeResolutions()
            // Repartition markers in every attempt: downstream tasks hold records until then.
            try producer.writeOwedMarkers { markAll || $0.isRepartition }
            for task in dirtyTasks {
                for table in task.stores {
                    let changelog = changelogPartition(table.spec.index, task.partition.partition)
                    // Owed markers go out with the task's offsets even when the store did
                    // not change (all records filtered): the group moves past their end.
                    try producer.writeMarkerIfOwed(changelog)
                    try table.forEachDirty { key, value in
                        try producer.sendChange(to: changelog, key: key, value: value, inputEnd: task.nextOffset)
                    }
                    try task.intake?.forEachChange { key, value in
                        try producer.sendChange(to: changelog, key: key, value: value, inputEnd: task.nextOffset)
                    }
                }
                for combiner in task.combiners { try sendPartials(of: combiner, task: task) }
            }
            try deadLetters.send(for: sourcePartitions, through: producer)
            try producer.commit(offsets: Dictionary(uniqueKeysWithValues: dirtyTasks.map { ($0.partition, $0.nextOffset) }), consumer: consumer)
        } catch {
            producer.abort()
            throw error
        }
        for task in dirtyTasks where !task.combiners.isEmpty {
            for combiner in task.combiners { combiner.removeAll() }
            task.combinedSince = task.nextOffset
        }
        for repartition in repartitionPartitions {
            if let end = producer.checkpoint(of: repartition) { context.tracker.wrote(repartition.topicPartition, upTo: end) }
        }
        if changesState { faults.maybeCrash(at: .afterKafkaCommit) }
        context.metrics.addDeadLetters(deadLetters.committed(for: sourcePartitions))
        let kafkaDone = ContinuousClock.now

        // The previous tail is written: its entries may leave the cache, RocksDB has them.
        try tail.finish()
        cacheShare.evictIfOver(tasks.values)
        view.reset()
        let writeBatch = tail.nextBatch()
        for task in dirtyTasks {
            let wholeState = task.rematerialize
            if wholeState {
                for table in task.stores { try table.markAllDirty() }
                task.rematerialize = false
                context.metrics.rematerializedTasks.add(1, ordering: .relaxed)
            }
            for table in task.stores { view.addDirty(of: table) }
            view.addPending(task.pendingWrites)
            view.fence(watermark: watermarkKey(task.partition), offset: task.nextOffset, wholeState: wholeState)
            if task.firstFencedOffset == nil { task.firstFencedOffset = task.nextOffset }
            writeBatch.put(offsets, key: Self.inputKey(task.partition), value: encodeOffset(task.nextOffset))
            task.intake?.write(to: writeBatch)
            task.intake?.markClean()
            for table in task.stores {
                table.writeDirty(to: writeBatch)
                let changelog = changelogPartition(table.spec.index, task.partition.partition)
                putChangelogPosition(changelog, checkpoint: producer.checkpoint(of: changelog), into: writeBatch)
                table.markClean()
            }
            task.committedOffset = task.nextOffset
            task.pendingWrites.removeAll()
        }
        tail.submit(view: view, batch: writeBatch)
        lastLagUpdate = .now - Self.lagUpdateInterval  // measure the lag this commit left at the next loop
        logger.debug("commit: Kafka in \(kafkaDone - start), then \(view.commandCount) Redis writes and \(writeBatch.count) state puts prepared in \(ContinuousClock.now - kafkaDone)")
        context.metrics.recordCommitSucceeded(micros: Int((ContinuousClock.now - start) / .microseconds(1)))
        return true
    }

    /// Sends a combiner's partials to the partitions owning their keys, and an empty record
    /// to every other partition: each committed attempt reaches every downstream task, so
    /// each sees an unbroken chain of upstream ranges (`RepartitionIntake`).
    private func sendPartials(of combiner: AggregateTable, task: StreamTask) throws {
        let topic = combiner.spec.repartitionTopic!
        let count = context.partitionCount
        var reached = [Bool](repeating: false, count: count)
        func partition(_ q: Int32) -> InternalPartition {
            InternalPartition(store: combiner.spec.index, topic: topic, partition: q, isRepartition: true)
        }
        let upstream = task.partition.partition
        try combiner.forEachDirty { key, value in
            let q = Repartitions.partition(of: key, count: count)
            reached[Int(q)] = true
            try producer!.sendPartial(to: partition(q), key: key, value: value, upstream: upstream, start: task.combinedSince, end: task.nextOffset)
        }
        for q in 0..<count where !reached[q] {
            try producer!.sendPartial(to: partition(Int32(q)), key: nil, value: [], upstream: upstream, start: task.combinedSince, end: task.nextOffset)
        }
    }

    /// Tasks whose watermark Redis does not have write their whole state in the next
    /// commit, which creates it (`RedisViewWriter`): Redis lost the application's keys, or
    /// the task is new (its first write finds none; that is no loss, and not logged as one).
    private func flagTasksRedisLost(_ watermarks: [[UInt8]: Int64]) {
        guard !watermarks.isEmpty else { return }
        var flagged: [String] = []
        for task in tasks.values where !task.rematerialize {
            guard let offset = watermarks[watermarkKey(task.partition)] else { continue }
            task.rematerialize = true
            if offset != task.firstFencedOffset || task.openedWithState { flagged.append(task.partition.description) }
        }
        if !flagged.isEmpty {
            logger.warning("Redis lost the keys of \(flagged.sorted()) (their watermarks vanished: restarted without its data, flushed or evicted): writing their whole state to Redis again")
        }
    }

    /// RocksDB key of the input offset the task's local state corresponds to.
    static func inputKey(_ tp: TopicPartition) -> [UInt8] { Array("input:\(tp.topic):\(tp.partition)".utf8) }

    /// The topic index of a partition this thread may be assigned (nil: not one of its topics).
    private func topicIndex(of tp: TopicPartition) -> Int? { topics.firstIndex(of: tp.topic) }

    private func changelogPartition(_ store: Int, _ partition: Int32) -> InternalPartition {
        InternalPartition(store: store, topic: changelogTopics[store], partition: partition)
    }

    /// Stores, with the state they describe, how far a store is restored from its changelog
    /// (`checkpoint`, when known) and the markers its changelog is still owed.
    private func putChangelogPosition(_ changelog: InternalPartition, checkpoint: Int64?, into batch: StateWriteBatch) {
        if let checkpoint { batch.put(offsets, key: Changelogs.checkpointKey(changelog), value: encodeOffset(checkpoint)) }
        batch.put(offsets, key: Changelogs.owedMarkersKey(changelog), value: InBandHeaders.encode(marking: producer!.owed(on: changelog)))
    }

    // MARK: rebalance

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        var start: [TopicPartition: Int64] = [:]
        let owned = partitions.filter { topicIndex(of: $0) != nil && Int($0.partition) < context.partitionCount }
        do {
            try tail.finish()  // opening tasks reads and writes Redis and RocksDB itself
            // The group's position is the truth under both guarantees: exactly-once commits
            // it with the changelog records, at-least-once after them.
            let committed = try consumer!.committed(owned)
            for task in try openTasks(owned, committed: committed) {
                tasks[task.partition] = task
                taskLookup[topicIndex(of: task.partition)!][Int(task.partition.partition)] = task
                start[task.partition] = committed[task.partition] ?? context.replayStart(of: task.partition)?.offset ?? KafkaOffset.beginning
            }
        } catch {
            failed = true
            context.requestStop(failure: "thread \(id): cannot open state for \(owned): \(error)")
        }
        logger.info("assigned \(partitions.map(\.description).sorted()), starting at \(start.map { "\($0.key)@\($0.value)" }.sorted())")
        return start
    }

    /// Opens the tasks' stores. A task whose local state is at the group's position (a
    /// clean restart, or a crash after the local write) restores nothing. The others
    /// restore their stores' changelog tails, all in one pass; keys restored newer than
    /// Redis are written there (fenced at the group's position) and then the checkpoints
    /// and the tasks' positions are stored — a commit tail like any other — so a crash
    /// anywhere in between restores again.
    private func openTasks(_ partitions: [TopicPartition], committed: [TopicPartition: Int64]) throws -> [StreamTask] {
        struct Store {
            let changelog: InternalPartition
            let columnFamily: ColumnFamily
            /// Index into the restore's targets; nil: the store is current.
            let target: Int?
        }
        let usesMarkers = context.config.processingGuarantee == .exactlyOnce
        var targets: [ChangelogRestore.Target] = []
        var storesOf: [[Store]] = []
        var redisReachable = true
        var rematerializeAtOpen = Set<TopicPartition>()
        for tp in partitions {
            let localOffset = try context.database.get(offsets, key: Self.inputKey(tp)).flatMap(decodeOffset)
            let current = localOffset != nil && localOffset == committed[tp]
            var redisWatermark: Int64?
            if redisReachable {
                do {
                    redisWatermark = try redis.send("HGET", String(decoding: watermarkKey(tp), as: UTF8.self), "offset").string.flatMap { Int64($0) }
                } catch {
                    // Not knowing how far Redis is, write every restored key (the fence keeps
                    // out what Redis already has newer); the commit tail rides the outage out.
                    redisReachable = false
                    context.metrics.redisErrors.add(1, ordering: .relaxed)
                    logger.warning("Redis unreachable while opening tasks, so every restored key will be written to it: \(error)")
                }
            }
            var stores: [Store] = []
            for spec in storeSpecs(of: tp) {
                let changelog = changelogPartition(spec.index, tp.partition)
                let columnFamily = try context.database.columnFamily("agg.\(spec.name).\(tp.partition)")
                // Markers the last life owed: it may have stopped before writing them.
                let owed = try context.database.get(offsets, key: Changelogs.owedMarkersKey(changelog)).flatMap(InBandHeaders.decodeMarker) ?? []
                producer!.owe(owed, on: changelog)
                var target: Int?
                if !current {
                    let checkpoint = try context.database.get(offsets, key: Changelogs.checkpointKey(changelog)).flatMap(decodeOffset) ?? 0
                    target = targets.count
                    targets.append(.init(changelog: changelog, columnFamily: columnFamily, checkpoint: checkpoint,
                                         committedInputOffset: committed[tp], redisWatermark: redisWatermark))
                }
                stores.append(Store(changelog: changelog, columnFamily: columnFamily, target: target))
            }
            storesOf.append(stores)
            // Redis lost the keys of a task that has written before (its watermark vanished):
            // write its whole state again, from the local stores.
            if (redisReachable && committed[tp] != nil && redisWatermark == nil) || context.rematerialize { rematerializeAtOpen.insert(tp) }
        }
        let outcomes = try ChangelogRestore(database: context.database, kafka: KafkaConfig(context.config.kafkaClientProperties),
                                            usesMarkers: usesMarkers, faults: faults, logger: logger).run(targets)

        let writeBatch = tail.nextBatch()
        var opened: [StreamTask] = []
        var stale = 0
        view.reset()
        for (tp, stores) in zip(partitions, storesOf) {
            var tables: [AggregateTable] = []
            var nothingCommitted = true
            var restored = false, staleInTask = 0
            for (store, spec) in zip(stores, storeSpecs(of: tp)) {
                let table = AggregateTable(spec: spec, columnFamily: store.columnFamily, database: context.database)
                tables.append(table)
                guard let target = store.target else {
                    nothingCommitted = false
                    continue
                }
                restored = true
                let outcome = outcomes[target]
                producer!.owe(outcome.resolved, on: store.changelog)
                nothingCommitted = nothingCommitted && outcome.end == 0
                let stale = outcome.staleInRedis.filter { !ReservedKeys.isReserved($0) }
                for key in stale { _ = try table.entry(for: key) }
                staleInTask += stale.count
                putChangelogPosition(store.changelog, checkpoint: outcome.end, into: writeBatch)
            }
            if staleInTask > 0 {
                for table in tables { view.addDirty(of: table) }
                view.fence(watermark: watermarkKey(tp), offset: committed[tp] ?? 0)
                stale += staleInTask
            }
            if restored, let offset = committed[tp] { writeBatch.put(offsets, key: Self.inputKey(tp), value: encodeOffset(offset)) }
            let replay = context.replayStart(of: tp)
            let nextOffset = committed[tp] ?? replay?.offset ?? 0
            let task: StreamTask
            if tp.topic == sourceTopic {
                var tableOf = Dictionary(uniqueKeysWithValues: tables.map { ($0.spec.index, $0) })
                let byAggregate = topology.aggregates.map { tableOf.removeValue(forKey: $0.index) ?? AggregateTable(combining: $0) }
                task = StreamTask(partition: tp, byAggregate: byAggregate, intake: nil, nextOffset: nextOffset, committedOffset: committed[tp])
                // Earlier owners may have left attempts unmarked downstream: say where the group stands.
                for repartition in repartitionPartitions {
                    producer!.oweResolution(on: repartition, upstream: tp.partition, committed: committed[tp])
                }
            } else {
                let intake = RepartitionIntake(table: tables[0], usesMarkers: usesMarkers)
                intake.load(from: context.database)
                task = StreamTask(partition: tp, byAggregate: [], intake: intake, nextOffset: nextOffset, committedOffset: committed[tp])
            }
            task.openedWithState = committed[tp] != nil
            if rematerializeAtOpen.contains(tp) {
                task.rematerialize = true
                logger.warning("\(tp): \(context.rematerialize ? "--rematerialize" : "Redis does not hold its whole state (no watermark: Redis lost the application's keys, or a write of the whole state did not finish)"): writing its whole state to Redis again at the first commit")
            }
            // After a reset to a time: until something is committed, skip records older than it.
            if nothingCommitted { task.skipBeforeTimestamp = replay?.minTimestamp }
            opened.append(task)
        }
        for task in opened {
            for table in task.stores { table.markClean() }
        }
        // Written like any commit's tail, while processing begins: the next commit waits for
        // it, and a Redis outage pauses input until it is written.
        tail.submit(view: view, batch: writeBatch)
        if stale > 0 { logger.info("writing \(stale) restored key(s) that Redis does not have yet") }
        return opened
    }

    /// The stores of a task: a source partition's local aggregates, or a repartition
    /// partition's re-keyed aggregate.
    private func storeSpecs(of tp: TopicPartition) -> [CompiledTopology.Aggregate] {
        tp.topic == sourceTopic ? topology.localAggregates : topology.repartitioned.filter { $0.repartitionTopic == tp.topic }
    }

    private func watermarkKey(_ tp: TopicPartition) -> [UInt8] {
        RedisViewWriter.watermarkKey(application: topology.topology.application, partition: tp.description)
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        commitUntilDone(markAll: true)
        if !tail.isIdle {
            // Redis cannot take the last tail: give it up. Safe because the tasks it covered
            // close now (eager rebalancing revokes the whole assignment) and reopen through a
            // restore of their changelogs, which holds the tail's changes.
            tail.abandon()
            if Set(tasks.keys) != Set(partitions) {
                failed = true
                context.requestStop(failure: "thread \(id): a commit tail was given up in a Redis outage while tasks stay open; restart to restore them")
            }
        }
        var changelogs = Set<InternalPartition>()
        for tp in partitions {
            guard let task = tasks.removeValue(forKey: tp) else { continue }
            taskLookup[topicIndex(of: tp)!][Int(tp.partition)] = nil
            context.metrics.setLag(tp.description, nil)  // another member reports it now
            for table in task.stores { changelogs.insert(changelogPartition(table.spec.index, tp.partition)) }
            if tp.topic == sourceTopic {
                endReached.remove(tp.partition)
                context.tracker.moved(tp.partition)
            }
        }
        producer?.forget(changelogs)
        deadLetters.discard(for: Set(partitions.filter { $0.topic == sourceTopic }.map(\.partition)))
        if !partitions.isEmpty { logger.info("revoked \(partitions.map(\.description).sorted())") }
    }
}

extension Duration {
    var seconds: String {
        let (s, attos) = components
        return String(format: "%.2f", Double(s) + Double(attos) / 1e18)
    }
}
