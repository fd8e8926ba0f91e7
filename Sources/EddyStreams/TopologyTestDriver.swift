import EddyKafka
import EddyRedis
import EddyState
import Foundation

/// Runs a topology in memory, without a broker or Redis (Kafka Streams' `TopologyTestDriver`),
/// so a topology — or an operator — is unit-tested with plain assertions:
///
///     let driver = try TopologyTestDriver(topology, partitions: 3)
///     try driver.pipe(#"{"user_id":"u1","ts":1767225600000,"price":9.5}"#)
///     try driver.commit()
///     XCTAssertEqual(driver.redis["user:u1"], .hash(["count": "1", "sum_price": "9.5"]))
///
/// It builds the same tasks a stream thread builds (`TaskBuilder`), one per source partition
/// and one per partition of each repartition topic (a task per partition of each
/// sub-topology), over a RocksDB database in a fresh temporary directory (removed by
/// `close()` or when the driver goes away). Records are decoded as the stream thread
/// decodes them; a record that fails is a dead letter. A commit does what a stream thread's
/// commit does, in memory: the stores' changelog records are captured, what re-keying nodes
/// send (partials, records) goes straight to the tasks of the next sub-topology, in
/// sub-topology order (the at-least-once path, which delivers at once; those tasks are
/// committed in the same commit), the Redis view is rendered and applied to an in-memory
/// Redis, and the state is written to RocksDB. Nothing is visible in `redis` before a
/// commit, as in production.
///
/// Not thread-safe: use one driver from one thread.
public final class TopologyTestDriver {
    /// The topology's source topic: its partitions are numbered 0..<partitions.
    public let sourceTopic: String
    public let partitions: Int

    private var compiled: CompiledTopology
    private var decoder: RecordDecoder
    private let queue: DeadLetterQueue
    private let metrics = StreamsMetrics()
    /// The global tables, fed by `pipeTable`.
    private let globalTables: [GlobalTable]
    private var directory: URL
    private var database: StateDatabase?
    private var builder: TaskBuilder!
    /// Per sub-topology, a task per partition (sub-topology 0's read the source).
    private var tasks: [[StreamTask]] = []
    private var sourceTasks: [StreamTask] { tasks.first ?? [] }
    /// The group's committed offsets (what the broker would keep across restarts).
    private var committedOffsets: [TopicPartition: Int64] = [:]
    private var model = TestRedisModel()
    private var committedDeadLetters: [(reason: String, value: String)] = []
    private var committedTopicRecords: [String: [TopicRecord]] = [:]
    private var changelogOrder: [(InternalPartition, key: [UInt8], value: [UInt8]?)] = []
    private static let memoryBudgetBytes = 64 << 20

    /// Compiles `topology` (throws `TopologyError` as the runtime would) and opens its tasks
    /// on `partitions` source partitions, with empty state.
    public init(_ topology: Topology, partitions: Int = 1) throws {
        guard partitions >= 1 else { throw TopologyTestDriverError("partitions must be at least 1, not \(partitions)") }
        compiled = try TopologyCompiler.compile(topology)
        self.partitions = partitions
        sourceTopic = topology.source.topic
        decoder = RecordDecoder(compiled)
        queue = DeadLetterQueue(topic: topology.deadLetterTopic)
        globalTables = compiled.tables.map { GlobalTable(name: $0.name, topic: $0.topic, columns: $0.columns) }
        directory = Self.newDirectory()
        try openDatabase()
        try buildTasks()
    }

    deinit { close() }

    /// Closes the database and removes its directory. The driver is unusable afterwards.
    public func close() {
        tasks = []
        builder = nil
        database?.close()
        database = nil
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: input

    /// Pushes one source record (JSON text), keyed by its key field's value, into
    /// `partition`; by default the one Kafka's default partitioner (murmur2) gives that value,
    /// as a producer keyed by it would (partition 0 for a record that does not decode). It is decoded as the stream thread
    /// decodes it — a record that fails is a dead letter with its reason — and processed by
    /// the partition's task, whose offset advances by one.
    public func pipe(_ json: String, partition: Int32? = nil) throws {
        try pipe(json, partition: partition, kafkaKey: nil, keyedByField: true)
    }

    /// Pushes one source record as a producer that keys it otherwise does: with Kafka key
    /// `key` (nil: none) into `partition`. A key other than the key field's value makes the
    /// task re-key the record: at the next commit it reaches the task of its key field's
    /// value and is processed there.
    public func pipe(_ json: String, key: String?, partition: Int32) throws {
        try pipe(json, partition: partition, kafkaKey: key.map { Array($0.utf8) }, keyedByField: false)
    }

    private func pipe(_ json: String, partition: Int32?, kafkaKey: [UInt8]?, keyedByField: Bool) throws {
        guard database != nil else { throw TopologyTestDriverError("the driver is closed") }
        if let partition, !(0..<Int32(partitions)).contains(partition) {
            throw TopologyTestDriverError("partition \(partition) out of range 0..<\(partitions)")
        }
        let bytes = Array(json.utf8)
        try bytes.withUnsafeBytes { value in
            var failure: DeadLetterReason?
            do throws(DeadLetterReason) { try decoder.decode(value) } catch { failure = error }
            var key: [UInt8]?
            if failure == nil {
                var k: [UInt8] = []
                decoder.appendValue(compiled.keyField, from: value, to: &k)
                key = k
            }
            let p = partition ?? (partitions == 1 ? 0 : key.map { KafkaKeyPartitioner.partition(of: $0, count: partitions) } ?? 0)
            let task = sourceTasks[Int(p)]
            let offset = task.nextOffset
            if let failure {
                queue.add(key: nil, value: bytes, from: TopicPartition(sourceTopic, p), offset: offset, reason: failure)
            } else {
                let sent = keyedByField ? key : kafkaKey
                if let sent {
                    try sent.withUnsafeBytes { k in try task.process(value, decodedBy: decoder, key: k, offset: offset) }
                } else {
                    try task.process(value, decodedBy: decoder, key: nil, offset: offset)
                }
            }
            task.nextOffset = offset + 1
        }
    }

    /// Writes one record to a global table's topic, as a producer of it would: `value` (a
    /// JSON object) replaces the row of `key`, nil (a tombstone) deletes it. Every record
    /// piped afterwards sees the change, as a stream thread sees it within one poll.
    public func pipeTable(_ table: String, key: String, value: String?) throws {
        guard let target = globalTables.first(where: { $0.name == table }) else {
            throw TopologyTestDriverError("no table '\(table)' (tables: \(globalTables.map(\.name).joined(separator: ", ")))")
        }
        let keyBytes = Array(key.utf8)
        keyBytes.withUnsafeBytes { k in
            if let value {
                Array(value.utf8).withUnsafeBytes { target.apply(key: k, value: $0) }
            } else {
                target.apply(key: k, value: nil)
            }
        }
    }

    /// Table records that could not be rows (no key, not a JSON object), over all tables.
    public var invalidTableRecords: Int { globalTables.map(\.invalidRecords).reduce(0, +) }

    /// Records skipped as late so far (a top K's pairs; late session records are
    /// dead-lettered too).
    public var lateRecords: Int { metrics.lateRecords.load(ordering: .relaxed) }

    /// Groups a state_ttl expired so far.
    public var expiredGroups: Int { metrics.expiredGroups.load(ordering: .relaxed) }

    /// Rows the committed state holds for aggregate `name` (its RocksDB column families,
    /// over all partitions).
    public func storeEntries(_ name: String) throws -> Int {
        guard let database else { throw TopologyTestDriverError("the driver is closed") }
        guard let a = compiled.aggregates.firstIndex(where: { $0.name == name }),
              let store = compiled.stores.first(where: { if case .aggregate(a) = $0.role { return true }; return false }) else {
            throw TopologyTestDriverError("no aggregate named \(name)")
        }
        var rows = 0
        for p in 0..<partitions {
            database.forEach(try database.columnFamily(store.columnFamilyName(partition: Int32(p)))) { _, _ in
                rows += 1
                return true
            }
        }
        return rows
    }

    /// Source records re-keyed so far (Kafka key not their key field's value), counted at commits.
    public var rekeyedSourceRecords: Int { metrics.rekeyedSourceRecords.load(ordering: .relaxed) }

    /// Pushes the records in order, each to its default partition.
    public func pipe(_ records: [String]) throws {
        for record in records { try pipe(record) }
    }

    // MARK: commit

    /// Commits every task, as a stream thread's commit does but in memory: changelog records
    /// captured (`changelog`), what re-keying nodes send delivered to the next
    /// sub-topology's tasks (committed in the same commit), dead letters kept
    /// (`deadLetters`), the Redis view applied to the in-memory Redis (`redis`), the state
    /// written to RocksDB.
    public func commit() throws {
        guard let database else { throw TopologyTestDriverError("the driver is closed") }
        let capture = ChangelogCapture()
        // Source records keyed otherwise first: they reach source tasks, before any sends.
        for task in tasks[0] { try deliverRekeyed(from: task) }
        // Sub-topology order: a task's deliveries reach later sub-topologies only.
        for task in tasks.joined() {
            try task.sendChanges(through: capture)
            for output in task.outputs { try deliver(output, from: task) }
        }
        let all = Array(tasks.joined())
        changelogOrder += capture.records
        committedDeadLetters += queue.pending.map { (reason: $0.category, value: String(decoding: $0.value, as: UTF8.self)) }
        _ = queue.committed(for: Set(all.flatMap { [$0.partition] + ($0.rekeyedPartition.map { [$0] } ?? []) }))
        for task in all where !task.outputs.isEmpty { task.clearOutputs() }

        var view = RedisViewWriter()
        let batch = StateWriteBatch()
        let offsets = try database.columnFamily("offsets")
        for task in all {
            for r in task.topicRecords { committedTopicRecords[r.topic, default: []].append(r) }
            committedOffsets[task.partition] = task.nextOffset
            if let rekeyed = task.rekeyedPartition { committedOffsets[rekeyed] = task.rekeyedNextOffset }
            try task.renderView(into: &view)
            view.fence(watermark: watermarkKey(task.partition), offset: task.position, wholeState: task.rematerialize)
            batch.put(offsets, key: TaskManager.inputKey(task.partition), value: encodeOffset(task.position))
            task.writeState(to: batch)
        }
        try model.apply(view)
        try database.write(batch)
    }

    /// What a re-keying node sent, to the tasks of its sub-topology owning its keys,
    /// delivered at once (the at-least-once intake); each downstream task's offset advances
    /// per record, as if read from its repartition partition (an empty record to the
    /// partitions no key reached).
    private func deliver(_ output: any RepartitionOutput, from task: StreamTask) throws {
        guard let s = compiled.subtopology(reading: output.edge.topic) else { return }
        try deliver(output, from: task, start: task.combinedSince, to: tasks[s], rekeyed: false)
    }

    /// What a source task re-keyed, to the source tasks owning the keys.
    private func deliverRekeyed(from task: StreamTask) throws {
        guard let output = task.rekeyOutput else { return }
        try deliver(output, from: task, start: task.combinedSince, to: tasks[0], rekeyed: true)
    }

    private func deliver(_ output: any RepartitionOutput, from task: StreamTask, start: Int64, to downstream: [StreamTask], rekeyed: Bool) throws {
        var reached = [Bool](repeating: false, count: partitions)
        let partial = InBandHeaders.Partial(attempt: CommitAttempt(life: 0, sequence: 0), upstream: task.partition.partition,
                                            start: start, end: task.position, streamTime: task.streamTime, rekeyedEnd: task.rekeyedNextOffset)
        try output.forEachRecord { key, value in
            let q = Int(output.partition(of: key, count: partitions))
            reached[q] = true
            try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try downstream[q].receive(partial, key: k, value: v, rekeyed: rekeyed) } }
        }
        for q in 0..<partitions where !reached[q] {
            try [UInt8]().withUnsafeBytes { try downstream[q].receive(partial, key: nil, value: $0, rekeyed: rekeyed) }
        }
        for task in downstream { try (rekeyed ? task.rekeyIntake! : task.intake!).attemptsComplete(into: task) }
    }

    private func watermarkKey(_ tp: TopicPartition) -> [UInt8] {
        RedisViewWriter.watermarkKey(application: compiled.topology.application, partition: tp.description)
    }

    // MARK: what came out

    /// The Redis view after the commits so far: key → value. The fence's watermark keys
    /// (`eddy:{application}:wm:…`) are left out.
    public var redis: [String: TestRedisValue] { model.values }

    /// The records committed to an output topic so far, in the order they were sent (source
    /// partition by source partition within a commit): key, JSON value and `eddy.id`.
    public func topicRecords(_ topic: String) -> [(key: String?, value: String, id: String)] {
        (committedTopicRecords[topic] ?? []).map { r in
            (r.key.map { String(decoding: $0, as: UTF8.self) }, String(decoding: r.value, as: UTF8.self), String(decoding: r.id, as: UTF8.self))
        }
    }

    /// The expiry (seconds) last set on `key` by EXPIRE or SET EX; nil: none, or no such key.
    public func ttl(_ key: String) -> Int? { model.ttls[key] }

    /// Dead letters so far, committed ones first: the reason category (`invalid_json`,
    /// `missing_field`, `wrong_type`, …) and the record's text.
    public var deadLetters: [(reason: String, value: String)] {
        committedDeadLetters + queue.pending.map { (reason: $0.category, value: String(decoding: $0.value, as: UTF8.self)) }
    }

    /// The changelog records the commits sent, per changelog topic, in send order: each
    /// changed key's last value, nil for a tombstone.
    public var changelog: [String: [(key: [UInt8], value: [UInt8]?)]] {
        var out: [String: [(key: [UInt8], value: [UInt8]?)]] = [:]
        for (changelog, key, value) in changelogOrder { out[changelog.topic, default: []].append((key, value)) }
        return out
    }

    /// The group's committed input offset of source partition `partition` (nil: no commit yet).
    public func committedOffset(partition: Int32) -> Int64? { committedOffsets[TopicPartition(sourceTopic, partition)] }

    // MARK: restarts

    /// Simulates a crash and a restart on the same disk: the tasks are dropped, with
    /// everything not committed (records piped since the last commit, their dead letters),
    /// and rebuilt from RocksDB at the committed offsets. Redis keeps what it has.
    public func restart() throws {
        guard database != nil else { throw TopologyTestDriverError("the driver is closed") }
        dropTasks()
        try buildTasks()
    }

    /// `restart()` into a changed topology (a redeploy with another config): the same
    /// application, source and tables; its nodes' stores are what the old ones left.
    public func restart(with topology: Topology) throws {
        guard database != nil else { throw TopologyTestDriverError("the driver is closed") }
        let changed = try TopologyCompiler.compile(topology)
        guard topology.application == compiled.topology.application, topology.source.topic == sourceTopic, changed.tables.map(\.name) == compiled.tables.map(\.name) else {
            throw TopologyTestDriverError("a restart with another topology keeps the source topic and the tables")
        }
        dropTasks()
        compiled = changed
        decoder = RecordDecoder(changed)
        builder = makeBuilder(database!)
        try buildTasks()
    }

    /// Simulates a move to another machine: the tasks are dropped (with everything not
    /// committed), and rebuilt at the committed offsets over a fresh RocksDB restored from
    /// the captured changelog only (per store, each key's latest record; a tombstone or an
    /// empty value deletes it). Redis keeps what it has.
    public func restartOnEmptyDisk() throws {
        guard database != nil else { throw TopologyTestDriverError("the driver is closed") }
        dropTasks()
        database?.close()
        database = nil
        try? FileManager.default.removeItem(at: directory)
        directory = Self.newDirectory()
        try openDatabase()
        let database = database!
        let batch = StateWriteBatch()
        var families: [InternalPartition: ColumnFamily] = [:]
        for (changelog, key, value) in changelogOrder {
            let family: ColumnFamily
            if let f = families[changelog] {
                family = f
            } else {
                family = try database.columnFamily(compiled.stores[changelog.store].columnFamilyName(partition: changelog.partition))
                families[changelog] = family
            }
            if let value, !value.isEmpty { batch.put(family, key: key, value: value) } else { batch.delete(family, key: key) }
        }
        try database.write(batch)
        try buildTasks()
    }

    // MARK: tasks

    private static func newDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("eddy-test-driver-\(UUID().uuidString)", isDirectory: true)
    }

    private func openDatabase() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let opened = try StateDatabase(path: directory.path, memoryBudgetBytes: Self.memoryBudgetBytes)
        database = opened
        builder = makeBuilder(opened)
    }

    private func makeBuilder(_ database: StateDatabase) -> TaskBuilder {
        TaskBuilder(topology: compiled, database: database, usesMarkers: false, partitionCount: partitions, deadLetters: queue, metrics: metrics,
                    globalTables: globalTables)
    }

    private func dropTasks() {
        queue.discard(for: Set(tasks.joined().flatMap { [$0.partition] + ($0.rekeyedPartition.map { [$0] } ?? []) }))
        tasks = []
    }

    private func buildTasks() throws {
        func build(_ tp: TopicPartition) throws -> StreamTask {
            let committed = committedOffsets[tp]
            let rekeyed = builder.rekeyedPartner(of: tp).flatMap { committedOffsets[$0] }
            let task = try builder.build(tp, nextOffset: committed ?? 0, rekeyedNextOffset: rekeyed ?? 0,
                                         committedOffset: committed)
            task.openedWithState = committed != nil
            for (store, _) in task.stores { store.markClean() }
            return task
        }
        tasks = try compiled.subtopologies.map { subtopology in
            try (0..<Int32(partitions)).map { try build(TopicPartition(subtopology.topic, $0)) }
        }
    }
}

/// A value in the test driver's Redis.
public enum TestRedisValue: Equatable, CustomStringConvertible {
    case string(String)
    case hash([String: String])
    case zset([String: Double])
    case list([String])

    public var description: String {
        switch self {
        case .string(let s): return "string \(s)"
        case .hash(let h): return "hash \(h.sorted { $0.key < $1.key })"
        case .zset(let z): return "zset \(z.sorted { $0.key < $1.key })"
        case .list(let l): return "list \(l)"
        }
    }
}

/// A failure of the test driver itself (not of the topology): a closed driver, a partition out
/// of range, a Redis command its model does not know.
public struct TopologyTestDriverError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Captures a commit's changelog records.
private final class ChangelogCapture: ChangelogWriter {
    var records: [(InternalPartition, key: [UInt8], value: [UInt8]?)] = []

    func writeMarkerIfOwed(_ changelog: InternalPartition) throws {}

    func sendChange(to changelog: InternalPartition, key: [UInt8], value: [UInt8]?, inputEnd: Int64, rekeyedEnd: Int64) throws {
        records.append((changelog, key, value))
    }
}
