import EddyKafka
import EddyRedis
import EddyState
import Foundation
import Logging

/// A stream thread: its own group consumer, Redis connection and dead-letter producer, and
/// the tasks of the partitions assigned to it, driven by one poll → process → commit loop
/// on batches (no per-record async hops).
///
/// `@unchecked Sendable`: it is handed to the OS thread that runs it and touched only from
/// there (librdkafka calls the rebalance listener inside that thread's `poll`/`close`).
final class StreamThread: RebalanceListener, @unchecked Sendable {
    let id: Int
    private let context: RuntimeContext
    private let topology: CompiledTopology
    private var logger: Logger
    private var consumer: KafkaConsumer?
    private let redis: RedisConnection
    private let deadLetters: DeadLetterQueue
    private let decoder: RecordDecoder
    private var tasks: [Int32: StreamTask] = [:]
    private let offsets: ColumnFamily
    private let batch: ConsumedBatch
    private let writeBatch = StateWriteBatch()
    private var view = RedisViewWriter()
    /// Per node: did the current record reach it (a fixed buffer: no exclusivity checks).
    private let passes: UnsafeMutableBufferPointer<Bool>
    private var keyBuffer: [UInt8] = []
    private var endReached: Set<Int32> = []
    private var lastCommit = ContinuousClock.now
    /// Set when processing failed mid-record; from then on nothing is committed.
    private var failed = false
    private let faults = FaultInjection()
    private let sourceTopic: String
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
        redis = try RedisConnection(host: config.redisHost, port: config.redisPort)
        deadLetters = try DeadLetterQueue(topic: topology.topology.deadLetterTopic, config: KafkaConfig(config.kafkaClientProperties))
        decoder = RecordDecoder(topology)
        offsets = try context.database.columnFamily("offsets")
        batch = ConsumedBatch(capacity: config.pollBatchSize)
        passes = .allocate(capacity: max(topology.nodes.count, 1))
        passes.initialize(repeating: false)
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
            var props = config.kafkaClientProperties
            props["group.id"] = topology.topology.application
            props["client.id"] = "\(topology.topology.application)-\(id)"
            props["session.timeout.ms"] = String(config.sessionTimeoutMs)
            if config.staticMembership { props["group.instance.id"] = "\(config.resolvedInstanceId)-\(id)" }
            if props["max.poll.interval.ms"] == nil { props["max.poll.interval.ms"] = String(max(config.sessionTimeoutMs, 60_000)) }
            consumer = try KafkaConsumer(config: KafkaConfig(props), topics: [sourceTopic], listener: self)
        } catch {
            context.requestStop(failure: "thread \(id): cannot start the consumer: \(error)")
            return
        }
        let interval = Duration.milliseconds(config.commitIntervalMs)
        // Where the thread's time goes, logged at the end: waiting for records, running
        // the topology, committing.
        var polling = Duration.zero, processing = Duration.zero, committing = Duration.zero
        while !context.stopRequested {
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
            deadLetters.poll()
            let t2 = ContinuousClock.now
            polling += t1 - t0
            processing += t2 - t1
            if t2 - lastCommit >= interval || cacheIsFull {
                commitUntilDone()
                committing += ContinuousClock.now - t2
            }
            if context.untilCaughtUp, context.tracker.allCaughtUp {
                context.requestStop()
            }
        }
        batch.release()
        commitUntilDone()
        logger.info("time spent: waiting for records \(polling.seconds) s, processing \(processing.seconds) s, committing \(committing.seconds) s")
        consumer!.close()  // revokes the assignment: commits (nothing left) and leaves the group
        consumer = nil
    }

    private var cacheIsFull: Bool {
        tasks.values.contains { $0.aggregates.contains { $0.dirty.count >= context.config.cacheMaxEntries } }
    }

    // MARK: processing

    private func processBatch() throws {
        var received = 0, processed = 0
        for i in 0..<batch.count {
            let message = batch[i]
            if message.isError {
                if message.isPartitionEOF {
                    if tasks[message.partition] != nil {
                        endReached.insert(message.partition)
                        context.tracker.reachedEnd(message.partition)
                    }
                } else {
                    logger.warning("consumer: \(message.errorMessage)")
                }
                continue
            }
            // A partition no longer ours, or a record from before a seek: not ours to process.
            guard let task = tasks[message.partition], message.offset >= task.nextOffset else { continue }
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
                try deadLetters.send(message, sourceTopic: sourceTopic, reason: error)
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
                try aggregate(value, into: task.aggregates[a])
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
    private func aggregate(_ value: UnsafeRawBufferPointer, into table: AggregateTable) throws {
        keyBuffer.removeAll(keepingCapacity: true)
        for id in table.spec.groupFields {
            if decoder.slots[id].escaped {
                var decoded: [UInt8] = []
                decoder.appendValue(id, from: value, to: &decoded)
                decoded.withUnsafeBufferPointer { appendLengthPrefixed($0, to: &keyBuffer) }
            } else {
                appendLengthPrefixed(decoder.rawBytes(id, from: value), to: &keyBuffer)
            }
        }
        let e = try table.entry(for: keyBuffer)
        table.add(count: 1, to: e)
        for (j, id) in table.spec.sumFields.enumerated() where decoder.slots[id].kind == .number {
            table.add(decoder.double(id, from: value), sum: j, to: e)
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

    /// Commits, retrying until it succeeds or the process is stopping. A failed attempt
    /// leaves offsets where they were, so nothing is lost: the work is redone.
    private func commitUntilDone() {
        var attempt = 0
        while true {
            do {
                try commit()
                return
            } catch {
                attempt += 1
                logger.error("commit failed (attempt \(attempt)), retrying: \(error)")
                if context.stopRequested && attempt >= 3 {
                    logger.error("giving up on the last commit; uncommitted records will be processed again on restart")
                    return
                }
                Thread.sleep(forTimeInterval: min(0.2 * Double(attempt), 2))
            }
        }
    }

    /// 1. dead letters durable; 2. Redis view (absolute values: a crash after this and
    /// before 3 only means the same values are written again); 3. one RocksDB WriteBatch with
    /// the new state and each task's next offset (state and position move together);
    /// 4. the group's committed offsets (for lag tools; the local offsets are the truth).
    private func commit() throws {
        lastCommit = .now
        guard !failed else { return }
        let dirtyTasks = tasks.values.filter(\.hasUncommittedWork)
        guard !dirtyTasks.isEmpty else { return }
        let start = ContinuousClock.now
        try deadLetters.flush()
        context.metrics.addDeadLetters(deadLetters.takeCounts())

        view.reset()
        for task in dirtyTasks {
            for table in task.aggregates { view.addDirty(of: table) }
            view.addPending(task.pendingWrites)
            view.fence(watermark: RedisViewWriter.watermarkKey(application: topology.topology.application, partition: task.partition.description),
                       offset: task.nextOffset)
        }
        let refused = try view.send(over: redis)
        if refused > 0 {
            // Expected after a restart or migration: Redis is already at a later position.
            logger.debug("Redis fence kept \(refused) block(s) of older writes out")
            context.metrics.fencedWrites.add(refused, ordering: .relaxed)
        }
        faults.maybeCrash(at: .afterRedisWrite)
        let redisDone = ContinuousClock.now

        writeBatch.clear()
        for task in dirtyTasks {
            for table in task.aggregates { table.writeDirty(to: writeBatch) }
            writeBatch.put(offsets, key: Self.offsetKey(task.partition), value: Self.encode(task.nextOffset))
        }
        try context.database.write(writeBatch)
        let stateDone = ContinuousClock.now

        for task in dirtyTasks {
            task.committedOffset = task.nextOffset
            task.pendingWrites.removeAll()
            for table in task.aggregates {
                table.markClean()
                table.evictIfOver(context.config.cacheMaxEntries)
            }
        }
        do {
            try consumer?.commit(Dictionary(uniqueKeysWithValues: dirtyTasks.map { ($0.partition, $0.nextOffset) }))
        } catch {
            logger.warning("group offset commit failed (state is committed; lag reporting may lag): \(error)")
        }
        for task in tasks.values {
            let high = consumer?.cachedWatermarks(task.partition)?.high
            context.metrics.setLag(task.partition.description, high.map { max($0 - task.nextOffset, 0) })
        }
        logger.debug("commit: \(view.commandCount) Redis writes in \(redisDone - start), \(writeBatch.count) state puts in \(stateDone - redisDone), group offsets in \(ContinuousClock.now - stateDone)")
        context.metrics.redisWrites.add(view.commandCount, ordering: .relaxed)
        context.metrics.recordCommit(micros: Int((ContinuousClock.now - start) / .microseconds(1)))
    }

    static func offsetKey(_ tp: TopicPartition) -> [UInt8] { Array("\(tp.topic):\(tp.partition)".utf8) }
    static func encode(_ offset: Int64) -> [UInt8] { withUnsafeBytes(of: offset.littleEndian, Array.init) }
    static func decodeOffset(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count == 8 else { return nil }
        return Int64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })
    }

    // MARK: rebalance

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        var start: [TopicPartition: Int64] = [:]
        for tp in partitions where tp.topic == sourceTopic {
            do {
                let tables = try topology.aggregates.map { spec in
                    AggregateTable(spec: spec, columnFamily: try context.database.columnFamily("agg.\(spec.name).\(tp.partition)"),
                                   database: context.database)
                }
                let stored = try context.database.get(offsets, key: Self.offsetKey(tp)).flatMap(Self.decodeOffset)
                // Local state and its offset are the truth. Without a checkpoint the task
                // rebuilds its state from where `eddy reset` said, else from the beginning.
                let replay = context.replayStart?.topic == tp.topic ? context.replayStart?.partitions[tp.partition] : nil
                let task = StreamTask(partition: tp, aggregates: tables, nextOffset: stored ?? replay?.offset ?? 0, committedOffset: stored)
                if stored == nil { task.skipBeforeTimestamp = replay?.minTimestamp }
                tasks[tp.partition] = task
                start[tp] = stored ?? replay?.offset ?? KafkaOffset.beginning
            } catch {
                context.requestStop(failure: "thread \(id): cannot open state for \(tp): \(error)")
            }
        }
        logger.info("assigned \(partitions.map(\.description).sorted()), starting at \(start.map { "\($0.key)@\($0.value)" }.sorted())")
        return start
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        commitUntilDone()
        for tp in partitions {
            tasks[tp.partition] = nil
            endReached.remove(tp.partition)
            context.tracker.moved(tp.partition)
        }
        if !partitions.isEmpty { logger.info("revoked \(partitions.map(\.description).sorted())") }
    }
}

extension Duration {
    var seconds: String {
        let (s, attos) = components
        return String(format: "%.2f", Double(s) + Double(attos) / 1e18)
    }
}
