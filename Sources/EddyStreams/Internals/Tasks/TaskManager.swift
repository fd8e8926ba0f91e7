import EddyKafka
import EddyRedis
import EddyState
import Foundation
import Logging

/// A stream thread's tasks (Kafka Streams' `TaskManager`): which partitions it owns, the
/// tasks still restoring their stores, and the running ones. Assignment only registers
/// tasks as restoring, with their partitions paused; the thread's loop calls
/// `restoreStep()`, which brings their stores up to date in steps and then opens and
/// resumes them — so no restore runs inside librdkafka's rebalance callback, and the
/// loop keeps polling while a long restore goes on. Owned by the stream thread.
final class TaskManager {
    private let context: RuntimeContext
    private let builder: TaskBuilder
    private let redis: RedisConnection
    private let tail: CommitTail
    private let faults: FaultInjection
    private var logger: Logger
    let offsets: ColumnFamily
    /// The thread's copies of the global tables (its joins read them).
    let globalTables: [GlobalTable]
    /// The topics the thread consumes: the source (index 0), then each repartition topic.
    let topics: [String]
    /// Every partition of every repartition topic (markers may be owed on any of them).
    let repartitionPartitions: [InternalPartition]
    private(set) var tasks: [TopicPartition: StreamTask] = [:]
    /// The same tasks by topic index and partition: the per-record lookup.
    private(set) var taskLookup: [[StreamTask?]]

    /// An assigned partition whose task is not open yet.
    private struct Restoring {
        let partition: TopicPartition
        /// The group's committed offsets: of the partition, and for a source task of its
        /// partition of the source repartition topic.
        let committed: Int64?
        let rekeyedCommitted: Int64?
        /// Where the committed state stands (`StreamTask.position`).
        var committedPosition: Int64? { committed.map { $0 + (rekeyedCommitted ?? 0) } }
    }
    private var restoring: [Restoring] = []
    /// The restore under way and what it needs to open the tasks it restores.
    private var restore: (reader: ChangelogRestore, plan: OpenPlan)?

    init(context: RuntimeContext, redis: RedisConnection, tail: CommitTail, faults: FaultInjection, deadLetters: DeadLetterQueue, logger: Logger) throws {
        self.context = context
        self.redis = redis
        self.tail = tail
        self.faults = faults
        self.logger = logger
        let topology = context.topology
        globalTables = GlobalTable.copies(of: topology)
        builder = TaskBuilder(topology: topology, database: context.database, usesMarkers: context.config.processingGuarantee == .exactlyOnce, partitionCount: context.partitionCount,
                              deadLetters: deadLetters, metrics: context.metrics, globalTables: globalTables)
        offsets = try context.database.columnFamily("offsets")
        topics = [topology.topology.source.topic] + Repartitions.topics(of: topology)
        repartitionPartitions = topology.repartitionEdges.flatMap { edge in (0..<Int32(context.partitionCount)).map(edge.partition) }
        taskLookup = Array(repeating: Array(repeating: nil, count: context.partitionCount), count: topics.count)
    }

    var sourceTopic: String { builder.sourceTopic }
    var isRestoring: Bool { !restoring.isEmpty }
    var isIdle: Bool { tasks.isEmpty && restoring.isEmpty }
    /// Partitions paused until their task is open (a source task's two inputs).
    var restoringPartitions: Set<TopicPartition> {
        Set(restoring.flatMap { [$0.partition] + (builder.rekeyedPartner(of: $0.partition).map { [$0] } ?? []) })
    }

    /// The source repartition topic's partitions read by the source tasks of `partitions`.
    func rekeyedPartners(of partitions: [TopicPartition]) -> [TopicPartition] { partitions.compactMap(builder.rekeyedPartner) }

    /// Index of the source repartition topic in `topics`.
    var rekeyedTopicIndex: Int { topics.firstIndex(of: context.topology.sourceRekey.topic)! }

    /// Output-topic and repartition records wait in their tasks until the commit: this many
    /// commit early.
    var outputsPileUp: Bool { tasks.values.reduce(0) { $0 + $1.pendingBytes } > TopicRecord.pendingBytesLimit }

    /// The topic index of a partition this thread may be assigned (nil: not one of its topics).
    func topicIndex(of tp: TopicPartition) -> Int? { topics.firstIndex(of: tp.topic) }

    /// RocksDB key of the input offset the task's local state corresponds to.
    static func inputKey(_ tp: TopicPartition) -> [UInt8] { Array("input:\(tp.topic):\(tp.partition)".utf8) }

    func watermarkKey(_ tp: TopicPartition) -> [UInt8] {
        RedisViewWriter.watermarkKey(application: context.topology.topology.application, partition: tp.description)
    }

    // MARK: assignment

    /// Registers the partitions' tasks as restoring; returns where each starts. The
    /// partitions stay paused until `restoreStep` opens their task. A partition of the
    /// source repartition topic is the source task's second input, not a task: `committed`
    /// also holds the committed offsets of the source tasks' partners.
    func assign(_ partitions: [TopicPartition], committed: [TopicPartition: Int64]) -> [TopicPartition: Int64] {
        var start: [TopicPartition: Int64] = [:]
        for tp in partitions {
            if tp.topic == context.topology.sourceRekey.topic {
                start[tp] = committed[tp] ?? KafkaOffset.beginning
                continue
            }
            restoring.append(Restoring(partition: tp, committed: committed[tp], rekeyedCommitted: builder.rekeyedPartner(of: tp).flatMap { committed[$0] }))
            start[tp] = committed[tp] ?? context.replayStart(of: tp)?.offset ?? KafkaOffset.beginning
        }
        return start
    }

    /// Gives the partitions' tasks up (restoring or open); returns the changelog partitions
    /// they wrote.
    func revoke(_ partitions: [TopicPartition]) -> Set<InternalPartition> {
        var changelogs = Set<InternalPartition>()
        let gone = Set(partitions)
        if restoring.contains(where: { gone.contains($0.partition) }) {
            // Eager rebalancing revokes everything: a restore under way is dropped (what it
            // wrote lies past the stores' checkpoints, so the next restore reads it again).
            for r in restoring where gone.contains(r.partition) {
                for spec in builder.stores(of: r.partition) { changelogs.insert(builder.changelog(of: spec, partition: r.partition.partition)) }
            }
            restoring.removeAll { gone.contains($0.partition) }
            restore = nil
        }
        for tp in partitions {
            if let index = topicIndex(of: tp), Int(tp.partition) < context.partitionCount { taskLookup[index][Int(tp.partition)] = nil }
            guard let task = tasks.removeValue(forKey: tp) else { continue }
            if let partner = task.rekeyedPartition { taskLookup[topicIndex(of: partner)!][Int(partner.partition)] = nil }
            for (_, changelog) in task.stores { changelogs.insert(changelog) }
        }
        return changelogs
    }

    // MARK: restore

    /// What opening the restoring tasks needs besides the restore's outcomes.
    private struct OpenPlan {
        struct Store {
            let changelog: InternalPartition
            /// Index into the restore's targets; nil: the store is current.
            let target: Int?
        }
        let partitions: [Restoring]
        var storesOf: [[Store]] = []
        var rematerialize = Set<TopicPartition>()
    }

    /// Advances the restore of the restoring tasks for about `budget`; once it is done,
    /// opens them and returns the partitions to resume.
    func restoreStep(producer: StreamProducer, budget: Duration = .milliseconds(200)) throws -> [StreamTask] {
        guard !restoring.isEmpty else { return [] }
        if restore == nil { restore = try planRestore(producer: producer) }
        guard let (reader, plan) = restore, let outcomes = try reader.step(for: budget) else { return [] }
        restore = nil
        restoring.removeAll()
        return try open(plan, outcomes: outcomes, producer: producer)
    }

    /// Decides which stores need a restore. A task whose local state is at the group's
    /// position (a clean restart, or a crash after the local write) restores nothing; the
    /// others restore their stores' changelog tails, all in one reader.
    private func planRestore(producer: StreamProducer) throws -> (ChangelogRestore, OpenPlan) {
        try tail.finish()  // its RocksDB writes come before the restore reads the stores
        let usesMarkers = context.config.processingGuarantee == .exactlyOnce
        var targets: [ChangelogRestore.Target] = []
        var plan = OpenPlan(partitions: restoring)
        var redisReachable = true
        for r in restoring {
            let tp = r.partition
            let localOffset = try context.database.get(offsets, key: Self.inputKey(tp)).flatMap(decodeOffset)
            let current = localOffset != nil && localOffset == r.committedPosition
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
            var stores: [OpenPlan.Store] = []
            for spec in builder.stores(of: tp) {
                let changelog = builder.changelog(of: spec, partition: tp.partition)
                // Markers the last life owed: it may have stopped before writing them.
                let owed = try context.database.get(offsets, key: Changelogs.owedMarkersKey(changelog)).flatMap(InBandHeaders.decodeMarker) ?? []
                producer.owe(owed, on: changelog)
                var target: Int?
                if !current {
                    let checkpoint = try context.database.get(offsets, key: Changelogs.checkpointKey(changelog)).flatMap(decodeOffset) ?? 0
                    target = targets.count
                    targets.append(.init(changelog: changelog, columnFamily: try builder.columnFamily(of: spec, partition: tp.partition), checkpoint: checkpoint,
                                         committedInputOffset: r.committedPosition, committedRekeyedOffset: r.rekeyedCommitted ?? 0, redisWatermark: redisWatermark))
                }
                stores.append(.init(changelog: changelog, target: target))
            }
            plan.storesOf.append(stores)
            // Redis lost the keys of a task that has written before (its watermark vanished):
            // write its whole state again, from the local stores.
            if (redisReachable && r.committed != nil && redisWatermark == nil) || context.rematerialize { plan.rematerialize.insert(tp) }
        }
        let reader = try ChangelogRestore(targets: targets, database: context.database, kafka: KafkaConfig(context.config.kafkaClientProperties),
                                          usesMarkers: usesMarkers, faults: faults, logger: logger)
        return (reader, plan)
    }

    /// Opens the restored tasks. Keys restored newer than Redis are written there (fenced
    /// at the group's position) and then the checkpoints and the tasks' positions are
    /// stored — a commit tail like any other — so a crash anywhere in between restores again.
    private func open(_ plan: OpenPlan, outcomes: [ChangelogRestore.Outcome], producer: StreamProducer) throws -> [StreamTask] {
        try tail.finish()  // commits go on while stores restore (owed markers): their tail comes first
        let writeBatch = tail.nextBatch()
        var view = RedisViewWriter()
        var opened: [StreamTask] = []
        var stale = 0
        for (r, stores) in zip(plan.partitions, plan.storesOf) {
            let tp = r.partition
            let replay = context.replayStart(of: tp)
            let task = try builder.build(tp, nextOffset: r.committed ?? replay?.offset ?? 0, rekeyedNextOffset: r.rekeyedCommitted ?? 0,
                                         committedOffset: r.committed)
            var nothingCommitted = true
            var restored = false, staleInTask = 0
            for (store, (taskStore, _)) in zip(stores, task.stores) {
                guard let target = store.target else {
                    nothingCommitted = false
                    continue
                }
                restored = true
                let outcome = outcomes[target]
                producer.owe(outcome.resolved, on: store.changelog)
                nothingCommitted = nothingCommitted && outcome.end == 0
                if !outcome.staleInRedis.isEmpty, let owner = task.operators.first(where: { $0?.stores.contains { $0 === taskStore } == true }) {
                    try owner?.restored(staleKeys: outcome.staleInRedis, of: taskStore)
                    staleInTask += outcome.staleInRedis.count
                }
                putChangelogPosition(store.changelog, checkpoint: outcome.end, owed: producer.owed(on: store.changelog), into: writeBatch)
            }
            if staleInTask > 0 {
                try task.renderView(into: &view)
                view.fence(watermark: watermarkKey(tp), offset: r.committedPosition ?? 0)
                stale += staleInTask
            }
            if restored, let position = r.committedPosition { writeBatch.put(offsets, key: Self.inputKey(tp), value: encodeOffset(position)) }
            // Earlier owners may have left attempts unmarked downstream: say where the group stands.
            let s = context.topology.subtopology(reading: tp.topic)
            for edge in context.topology.repartitionEdges where edge.upstream == s {
                for q in 0..<Int32(context.partitionCount) {
                    producer.oweResolution(on: edge.partition(q), upstream: tp.partition, committed: r.committedPosition, rekeyedCommitted: r.rekeyedCommitted ?? 0)
                }
            }
            task.openedWithState = r.committed != nil
            if plan.rematerialize.contains(tp) {
                task.rematerialize = true
                logger.warning("\(tp): \(context.rematerialize ? "--rematerialize" : "Redis does not hold its whole state (no watermark: Redis lost the application's keys, or a write of the whole state did not finish)"): writing its whole state to Redis again at the first commit")
            }
            // After a reset to a time: until something is committed, skip records older than it.
            if nothingCommitted { task.skipBeforeTimestamp = replay?.minTimestamp }
            opened.append(task)
        }
        for task in opened {
            for (store, _) in task.stores { store.markClean() }
            for op in task.operators { op?.committed() }
            tasks[task.partition] = task
            taskLookup[topicIndex(of: task.partition)!][Int(task.partition.partition)] = task
            if let partner = task.rekeyedPartition { taskLookup[topicIndex(of: partner)!][Int(partner.partition)] = task }
        }
        // Written like any commit's tail, while processing begins: the next commit waits for
        // it, and a Redis outage pauses input until it is written.
        tail.submit(view: view, batch: writeBatch)
        if stale > 0 { logger.info("writing \(stale) restored key(s) that Redis does not have yet") }
        return opened
    }

    /// Stores, with the state they describe, how far a store is restored from its changelog
    /// (`checkpoint`, when known) and the markers its changelog is still owed.
    func putChangelogPosition(_ changelog: InternalPartition, checkpoint: Int64?, owed: [CommitAttempt], into batch: StateWriteBatch) {
        if let checkpoint { batch.put(offsets, key: Changelogs.checkpointKey(changelog), value: encodeOffset(checkpoint)) }
        batch.put(offsets, key: Changelogs.owedMarkersKey(changelog), value: InBandHeaders.encode(marking: owed))
    }
}
