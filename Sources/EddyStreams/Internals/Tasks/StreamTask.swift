import EddyKafka
import Foundation
import EddyState

/// The unit of work and state (Kafka Streams' `StreamTask`): one input partition, its
/// operators and their stores, its stream time and timers, the offset it has processed up
/// to, and the Redis writes waiting for the next commit. Owned by the stream thread the
/// partition is assigned to, or by a `TopologyTestDriver`.
///
/// A task belongs to one sub-topology: a source task runs the nodes of sub-topology 0 on a
/// source partition; a repartition task those of a later sub-topology on a partition of
/// its repartition topic, fed through its intake. Nodes that re-key have their upstream
/// half here (`outputs`, sent at commit) and run in the next sub-topology's tasks.
///
/// A source task has a second input: partition p of `<application>-source-repartition`,
/// where every source task sends the records whose Kafka key is not their key field
/// (`SourceRekeyOutput`), and from which this task takes those whose key is its own
/// (`rekeyIntake`). Its position — what changelog records, the Redis fence, the local
/// checkpoint and its outputs' ranges name — is then the sum of its two next offsets
/// (`position`): it grows whenever either input advances, and the group commits both.
final class StreamTask: RepartitionTarget {
    let partition: TopicPartition
    /// The task's operators by node number (nil: the node does not run in this task).
    let operators: [OperatorNode?]
    /// The operators the input feeds: the source's children, or the re-keying node that
    /// starts a repartition task's sub-topology.
    private let roots: [OperatorNode]
    /// Every store with its changelog partition, in the topology's store order.
    let stores: [(store: any StateStore, changelog: InternalPartition)]
    /// What goes to repartition topics at commit (combiners' partials, re-keyed records).
    let outputs: [any RepartitionOutput]
    /// Repartition tasks: what decides which upstream records are committed, and how the
    /// first node takes them.
    let intake: RepartitionIntake?
    private let intakeKind: CompiledTopology.RepartitionEdge.Kind?
    /// Decodes the records an intake releases (a repartition task's, or re-keyed source records).
    private let releasedDecoder: RecordDecoder?
    /// Source tasks: the records this task re-keys, sent at the commit.
    let rekeyOutput: SourceRekeyOutput?
    /// Source tasks: what decides which re-keyed records are committed (`deliver`).
    let rekeyIntake: RepartitionIntake?
    /// Source tasks: the partition of the source repartition topic this task reads.
    let rekeyedPartition: TopicPartition?
    /// The next offset to read from `rekeyedPartition` (0 without one).
    var rekeyedNextOffset: Int64
    /// Whether the record being run was re-keyed to this task (output ids and dead letters
    /// name the source repartition partition and offset).
    private var runningRekeyed = false
    /// Records re-keyed since the last commit (`eddy_rekeyed_source_records_total`).
    private var rekeyedRecords = 0
    /// Whether a re-keyed record was released to this task since the last commit (it
    /// needs a commit; see `hasUncommittedWork`).
    private var deliveredRekeyed = false
    private var rekeyKey: [UInt8] = []
    /// Present when an operator of the topology schedules timers.
    let timers: TaskTimers?
    private let timestampField: Int
    private let deadLetters: DeadLetterQueue
    let metrics: StreamsMetrics

    /// Where the outputs' records start: the position of the last commit (or open).
    var combinedSince: Int64
    /// The next offset to process; everything before it is in the stores or dead-lettered.
    var nextOffset: Int64
    /// How far the task has processed its inputs: `nextOffset`, plus `rekeyedNextOffset`
    /// for a source task. It only grows along the committed chain; two attempts with the
    /// same position are told apart by `rekeyedNextOffset` (carried next to it in changelog
    /// and repartition headers).
    var position: Int64 { nextOffset + rekeyedNextOffset }
    /// `nextOffset` as of the last durable commit (nil: nothing committed yet).
    var committedOffset: Int64?
    /// Event time (ms), what fires timers: a source task's largest record timestamp; a
    /// repartition task's is the time all its upstream partitions have reached
    /// (`RepartitionIntake.watermark`).
    private(set) var streamTime: Int64
    /// The stream time the record being processed is judged by (is it late?) and that a
    /// record re-keyed onwards carries: a source task's stream time; in a repartition task
    /// the stream time of the upstream task that sent the record, or a firing timer's time.
    private(set) var recordStreamTime: Int64 = .min
    var pendingWrites = PendingRedisWrites()
    /// After a reset to a time: records with an older (record) timestamp are skipped until
    /// the first that is not.
    var skipBeforeTimestamp: Int64?
    /// Redis lost (or never had) this task's keys: the next commit writes its whole state.
    var rematerialize = false
    /// The input offset of the task's first fenced Redis block in this process, and whether
    /// the group had committed anything for it when it opened: a new task's first write
    /// finds no watermark, and that is no loss.
    var firstFencedOffset: Int64?
    var openedWithState = false
    /// The source record being processed, for dead letters raised by operators.
    private var input: (key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, offset: Int64)?
    /// Output-topic records of the records processed since the last commit: sent with the
    /// commit, kept when it fails (the next attempt sends them again).
    private(set) var topicRecords: [TopicRecord] = []
    /// Their bytes: past `TopicRecord.pendingBytesLimit` the thread commits early.
    private(set) var topicRecordBytes = 0
    /// Per output topic: the source offset it last wrote a record for, and how many it wrote
    /// for it (the last part of `eddy.id` counts per topic, so a node writing another topic
    /// cannot shift them).
    private var topicRecordsOfInput: [(offset: Int64, rekeyed: Bool, count: Int)]
    private let keyField: Int

    init(partition: TopicPartition, operators: [OperatorNode?], roots: [OperatorNode], outputs: [any RepartitionOutput],
         stores: [(store: any StateStore, changelog: InternalPartition)], intake: (RepartitionIntake, CompiledTopology.RepartitionEdge.Kind)?,
         rekey: (output: SourceRekeyOutput, intake: RepartitionIntake, partition: TopicPartition, nextOffset: Int64)?,
         timers: TaskTimers?, topology: CompiledTopology, deadLetters: DeadLetterQueue, metrics: StreamsMetrics, nextOffset: Int64, committedOffset: Int64?) {
        self.partition = partition
        self.operators = operators
        self.roots = roots
        self.stores = stores
        self.outputs = outputs
        self.intake = intake?.0
        intakeKind = intake?.1
        releasedDecoder = intake?.1 == .records || rekey != nil ? RecordDecoder(topology) : nil
        rekeyOutput = rekey?.output
        rekeyIntake = rekey?.intake
        rekeyedPartition = rekey?.partition
        rekeyedNextOffset = rekey?.nextOffset ?? 0
        self.timers = timers
        timestampField = topology.timestampField
        keyField = topology.keyField
        self.deadLetters = deadLetters
        self.metrics = metrics
        self.nextOffset = nextOffset
        self.committedOffset = committedOffset
        combinedSince = nextOffset + (rekey?.nextOffset ?? 0)
        streamTime = timers?.storedStreamTime ?? .min
        topicRecordsOfInput = Array(repeating: (-1, false, 0), count: topology.outputTopics.count)
    }

    // MARK: processing

    /// Runs the topology on one decoded source record, then fires the timers its event
    /// time made due. A record keyed otherwise than by its key field is re-keyed instead:
    /// held for the source repartition topic (the task of its key processes it).
    @inline(__always)
    func process(_ value: UnsafeRawBufferPointer, decodedBy decoder: RecordDecoder, key: UnsafeRawBufferPointer?, offset: Int64) throws {
        let time = decoder.int64(timestampField, from: value)
        if let rekeyOutput, !Self.keyMatches(key, field: keyField, of: value, decodedBy: decoder) {
            rekeyKey.removeAll(keepingCapacity: true)
            decoder.appendValue(keyField, from: value, to: &rekeyKey)
            rekeyOutput.add(key: rekeyKey, json: value, timestamp: time, streamTime: streamTime)
            rekeyedRecords += 1
            return
        }
        if time > streamTime { streamTime = time }
        try run(Record(value: value, fields: decoder, timestamp: time, offset: offset), key: key, judgedBy: streamTime)
    }

    /// Feeds one record to the roots with `input` set (dead letters and output ids name
    /// it), then fires the timers stream time made due.
    @inline(__always)
    private func run(_ record: Record, key: UnsafeRawBufferPointer?, judgedBy time: Int64) throws {
        recordStreamTime = time
        input = (key, record.value, record.offset)
        defer { input = nil }
        for root in roots { try root.process(record, in: self) }
        if let timers, timers.hasDue(at: streamTime) { try fireTimers(timers) }
    }

    /// A repartition task takes one record of its partition (data, marker or resolution):
    /// its intake delivers what it settles as committed (`deliver`).
    func receive(_ message: KafkaMessage) throws {
        receiving = message.offset
        try intake!.receive(message, into: self)
        nextOffset = message.offset + 1
    }

    /// A source task takes one record of its partition of the source repartition topic:
    /// its intake delivers the re-keyed records it settles as committed (`deliver`).
    func receiveRekeyed(_ message: KafkaMessage) throws {
        receiving = message.offset
        try rekeyIntake!.receive(message, into: self)
        rekeyedNextOffset = message.offset + 1
    }

    /// The offset of the repartition record being received: what releases a record (its
    /// marker, a resolution, or itself under at-least-once) is where it is processed.
    private var receiving: Int64 = 0

    /// Takes one committed upstream record, released by the intake: a partial merged into
    /// the first node's store, or a record processed by the sub-topology from its first node.
    func deliver(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        switch intakeKind {
        case .partials:
            try (roots[0] as! AggregateOperator).merge(partial: value, key: key, offset: receiving, in: self)
        case .records:
            guard let decoder = releasedDecoder, let record = RepartitionedRecord.decode(value) else { return }
            try decoder.extract(record.json)
            var released = Record(value: record.json, fields: decoder, timestamp: record.timestamp, offset: receiving)
            released.retraction = record.retraction
            try run(released, key: key, judgedBy: record.streamTime)
        case nil:
            // A source task: a record re-keyed to it, processed as a source record keyed right.
            guard let decoder = releasedDecoder, let record = RepartitionedRecord.decode(value) else { return }
            try decoder.extract(record.json)
            if record.timestamp > streamTime { streamTime = record.timestamp }
            runningRekeyed = true
            deliveredRekeyed = true
            defer { runningRekeyed = false }
            try run(Record(value: record.json, fields: decoder, timestamp: record.timestamp, offset: receiving), key: key, judgedBy: streamTime)
        case .sourceRecords:
            preconditionFailure("no sub-topology reads the source repartition topic")
        }
    }

    /// The intake's watermark moved: it is the stream time now, and fires what it made due.
    /// What the timers write is the doing of the repartition record being received (output
    /// ids and dead letters name its offset; a dead letter carries an empty value).
    func upstreamTimeAdvanced() throws {
        guard let w = intake?.watermark, w > streamTime else { return }
        streamTime = w
        guard let timers, timers.hasDue(at: streamTime) else { return }
        input = (nil, UnsafeRawBufferPointer(start: nil, count: 0), receiving)
        defer { input = nil }
        try fireTimers(timers)
    }

    /// A test driver's repartition task takes one record without a broker: like one read
    /// at the next offset of its partition (the driver's intake is at-least-once: it
    /// delivers at once). An empty key: the upstream attempt sent nothing for this partition.
    /// `rekeyed`: a source task's record of the source repartition topic.
    func receive(_ partial: InBandHeaders.Partial, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, rekeyed: Bool = false) throws {
        if rekeyed {
            receiving = rekeyedNextOffset
            try rekeyIntake!.add(partial, key: key, value: value, into: self)
            rekeyedNextOffset += 1
        } else {
            receiving = nextOffset
            try intake!.add(partial, key: key, value: value, into: self)
            nextOffset += 1
        }
    }

    /// Fires due timers in (time, node, key) order; a timer a callback schedules that is
    /// already due fires in the same pass.
    private func fireTimers(_ timers: TaskTimers) throws {
        while let timer = timers.popDue(at: streamTime) {
            recordStreamTime = timer.time
            try operators[timer.node]?.timerFired(key: timer.key, at: timer.time, in: self)
        }
    }

    /// Whether the record's Kafka key is its key field's value. A record keyed otherwise (or
    /// not at all) may sit in another partition than its key's other records, so it is
    /// re-keyed (`SourceRekeyOutput`).
    @inline(__always)
    static func keyMatches(_ key: UnsafeRawBufferPointer?, field: Int, of value: UnsafeRawBufferPointer, decodedBy decoder: RecordDecoder) -> Bool {
        guard let key else { return false }
        if decoder.slots[field].escaped {
            var decoded: [UInt8] = []
            decoder.appendValue(field, from: value, to: &decoded)
            return decoded.elementsEqual(key)
        }
        let raw = decoder.rawBytes(field, from: value)
        return raw.count == key.count && memcmp(raw.baseAddress!, key.baseAddress!, raw.count) == 0
    }

    /// Dead-letters the source record being processed (an operator found it unusable, e.g.
    /// too late for its window).
    func deadLetter(_ reason: DeadLetterReason) {
        guard let input else { return }
        deadLetters.add(key: input.key.map(Array.init), value: Array(input.value), from: inputPartition, offset: input.offset, reason: reason)
    }

    /// Collects the per-record writes of a node's sinks, deduplicated to the last value per
    /// key and field until the commit.
    func collectSinkWrites(_ sinks: [CompiledSink], _ record: Record) {
        let render: (OutputRef, inout [UInt8]) -> Void = { ref, out in
            if case .field(let id) = ref { record.fields.appendValue(id, from: record.value, to: &out) }
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
                    pendingWrites.set(.init(kind: .hash, key: key, field: name), text(ref), ttl: sink.ttlSeconds)
                }
            } else {
                pendingWrites.set(.init(kind: sink.kind, key: key, field: field), text(sink.value), ttl: sink.ttlSeconds)
            }
        }
    }

    /// Collects the records a node writes to output topics, as JSON, each with its id.
    func collectTopicWrites(_ sinks: [CompiledTopicSink], _ record: Record) {
        guard let input else { return }
        let fields = record.fields
        for sink in sinks {
            var key: [UInt8]?
            if let template = sink.key {
                var k: [UInt8] = []
                template.render(into: &k) { ref, out in
                    if case .field(let id) = ref { fields.appendValue(id, from: record.value, to: &out) }
                }
                key = k
            }
            var value: [UInt8]
            if let columns = sink.fields {
                value = [UInt8(ascii: "{")]
                for (j, (name, id)) in columns.enumerated() {
                    if j > 0 { value.append(UInt8(ascii: ",")) }
                    value.append(contentsOf: name)
                    fields.appendJSON(id, from: record.value, to: &value)
                }
                value.append(UInt8(ascii: "}"))
            } else {
                value = Array(record.value)
            }
            if value.count > TopicRecord.maxValueBytes {
                // The broker would refuse it, and every commit after it: the record that caused it goes to the dead-letter topic.
                deadLetter(DeadLetterReason(category: .tooLarge, message: "its record for output topic \(sink.topic) would be \(value.count) bytes, over \(TopicRecord.maxValueBytes)"))
                continue
            }
            var n = topicRecordsOfInput[sink.topicIndex]
            if n.offset != input.offset || n.rekeyed != runningRekeyed { n = (input.offset, runningRekeyed, 0) }
            let id = Array("\(inputPartition.topic)/\(inputPartition.partition)/\(input.offset)/\(n.count)".utf8)
            topicRecordsOfInput[sink.topicIndex] = (input.offset, runningRekeyed, n.count + 1)
            topicRecordBytes += value.count + (key?.count ?? 0) + id.count
            topicRecords.append(TopicRecord(topic: sink.topic, key: key, value: value, id: id))
        }
    }

    // MARK: commit

    /// Whether the task needs a commit. Progress on the source repartition partition alone
    /// (markers, empty records, records still waiting for their marker) does not: every
    /// source task's commit writes to every partition of that topic, so if reading them
    /// called for a commit, source tasks would make each other commit forever. That
    /// progress is committed with the task's next commit (the intake's state with its
    /// offset), or read again after a restart.
    var hasUncommittedWork: Bool {
        rematerialize || committedOffset != nextOffset || !pendingWrites.isEmpty || !topicRecords.isEmpty
            || stores.contains { $0.store.hasChanges && $0.store !== rekeyIntake?.store }
            || outputs.contains { !$0.isEmpty } || intake?.hasChanges == true || deliveredRekeyed
    }

    /// Whether a commit would change state or Redis, not only offsets.
    var changesState: Bool {
        !pendingWrites.isEmpty || !topicRecords.isEmpty || stores.contains { $0.store.hasChanges } || outputs.contains { !$0.isEmpty }
    }

    /// The commit's output-topic records (after the stores' changes). A keyed record goes
    /// where the partitioner puts its key; one without a key to the partition of its source
    /// partition (`partitionCounts`: each output topic's), never a random one, so each copy
    /// of it lands where its id is checked against the same predecessors.
    func sendTopicRecords(through producer: StreamProducer, partitionCounts: [String: Int]) throws {
        for r in topicRecords {
            let target: Int32? = r.key == nil ? partitionCounts[r.topic].map { count in partition.partition % Int32(count) } : nil
            try producer.send(topic: r.topic, partition: target, key: r.key, value: r.value, headers: [(TopicRecord.idHeader, r.id)])
        }
    }

    /// The commit's Kafka part for this task's stores: each changed key's last value (or a
    /// tombstone) to the store's changelog, after the marker the changelog is owed.
    func sendChanges(through changelogs: any ChangelogWriter) throws {
        for op in operators { try op?.prepareCommit() }
        if let timers { timers.prepareCommit(streamTime: streamTime) }
        intake?.prepareCommit()
        rekeyIntake?.prepareCommit()
        for (store, changelog) in stores {
            // Owed markers go out with the task's offsets even when the store did not
            // change (all records filtered): the group moves past their end.
            try changelogs.writeMarkerIfOwed(changelog)
            try store.forEachChange { key, value in
                try changelogs.sendChange(to: changelog, key: key, value: value, inputEnd: position, rekeyedEnd: rekeyedNextOffset)
            }
        }
    }

    /// The Redis commands of the commit: every operator's state changes (its whole state
    /// when Redis lost it), then the per-record sink writes.
    func renderView(into view: inout RedisViewWriter) throws {
        for op in operators { try op?.renderView(into: &view, wholeState: rematerialize) }
        view.addPending(pendingWrites)
    }

    /// Puts the stores' changes into the commit's RocksDB batch and marks everything clean:
    /// call once the Kafka part is committed and the view rendered.
    func writeState(to batch: StateWriteBatch) {
        for (store, _) in stores {
            store.writeChanges(to: batch)
            store.markClean()
        }
        for op in operators { op?.committed() }
        if rekeyedRecords > 0 {
            metrics.rekeyedSourceRecords.add(rekeyedRecords, ordering: .relaxed)
            rekeyedRecords = 0
        }
        committedOffset = nextOffset
        deliveredRekeyed = false
        pendingWrites.removeAll()
        topicRecords.removeAll()
        topicRecordBytes = 0
        rematerialize = false
    }

    /// Bytes waiting for the commit in output topics' and repartition topics' records.
    var pendingBytes: Int { topicRecordBytes + outputs.reduce(0) { $0 + $1.pendingBytes } }

    /// After the outputs' records are committed downstream.
    func clearOutputs() {
        for output in outputs { output.clear() }
        combinedSince = position
    }

    /// The partition whose offset the record being run has: the source repartition
    /// partition for a re-keyed record, else the task's.
    private var inputPartition: TopicPartition { runningRekeyed ? rekeyedPartition! : partition }
}

/// Where a task's changelog records go: the thread's transactional producer, or a test
/// driver's capture.
protocol ChangelogWriter {
    func writeMarkerIfOwed(_ changelog: InternalPartition) throws
    func sendChange(to changelog: InternalPartition, key: [UInt8], value: [UInt8]?, inputEnd: Int64, rekeyedEnd: Int64) throws
}

/// A record for an output topic (`Topology.TopicSink`).
struct TopicRecord {
    /// `<source topic>/<partition>/<offset>/<n>`: the same on every re-processing.
    static let idHeader = "eddy.id"
    /// Kafka's default `max.message.bytes` is 1 MiB; leave room for headers and batching.
    static let maxValueBytes = 1_000_000
    /// A task's pending output bytes that make its thread commit before the interval.
    static let pendingBytesLimit = 8 << 20
    let topic: String
    let key: [UInt8]?
    let value: [UInt8]
    let id: [UInt8]
}

/// Per-record sink writes of non-aggregate nodes, deduplicated to the last value per Redis
/// key and field until the commit sends them.
struct PendingRedisWrites {
    struct Target: Hashable {
        let kind: Topology.RedisSink.Kind
        let key: [UInt8]
        let field: [UInt8]
    }
    private(set) var values: [Target: (value: [UInt8], ttl: Int?)] = [:]

    var isEmpty: Bool { values.isEmpty }

    mutating func set(_ target: Target, _ value: [UInt8], ttl: Int?) {
        values[target] = (value, ttl)
    }

    mutating func removeAll() { values.removeAll(keepingCapacity: true) }
}
