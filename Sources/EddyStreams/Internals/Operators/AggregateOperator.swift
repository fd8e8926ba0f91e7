/// An aggregate node (`aggregate`, `recent`, `decay`) in one task: groups records by its
/// group fields into an `AggregateTable` and renders the dirty groups through its sinks.
///
/// An aggregate that re-keys (its group lacks its sub-topology's key) has two halves: in
/// the upstream sub-topology's tasks a combiner (`CombinerOutput`), partials gathered
/// between two commits and sent to the repartition topic at commit; in the tasks of that
/// topic the store, into which its `RepartitionIntake` merges the committed partials.
///
/// With children (a further `aggregate` of its rows, as Kafka Streams'
/// KTable.groupBy().aggregate()), each change of a row — by a record or a merged partial —
/// is forwarded as the row's old values, a retraction, then its new ones, as JSON records
/// with the group fields and outputs: the child subtracts the one and adds the other. A
/// group whose count falls to 0 (a child's, after retractions) leaves Redis.
///
/// A decay with a top K also keeps entries per group and epoch, and kept values, and
/// prunes each item's neighbours as epochs close (`TopKPruning`). With a state TTL, groups
/// idle for it leave (`IdleExpiry`).
final class AggregateOperator: OperatorNode {
    let table: AggregateTable
    private let groupFields: [Int]
    private let topK: TopKPruning?
    private let expiry: IdleExpiry?
    /// The stream time of the record being added (a state TTL's touches are on it).
    private var touchTime = Int64.min
    private let timers: TaskTimers?
    /// A top K's scratch entry, for the rank of an encoded value.
    private let scratch: AggregateTable?
    /// Whether `groupKey` gives a top K's epoch key (else the group's total key).
    private var epochKeyed = true
    private var groupBuffer: [UInt8] = []
    /// The epoch key header of the latest record's epoch (most records share it).
    private var headerEpoch = Int64.min
    private var header: [UInt8] = []
    private let sinks: [CompiledSink]
    private var keyBuffer: [UInt8] = []
    private var valueScratch: [UInt8] = []
    /// For forwarding rows: `"name":` per group field, then per output; the rows' decoder.
    private let rowNames: [[UInt8]]
    private let rowDecoder: RecordDecoder
    private var row: [UInt8] = []

    init(index: Int, table: AggregateTable, timers: TaskTimers?, topology: CompiledTopology) {
        self.table = table
        groupFields = table.spec.groupFields
        topK = table.spec.topK.map(TopKPruning.init)
        expiry = table.spec.stateTTLMs.map(IdleExpiry.init)
        self.timers = timers
        scratch = topK == nil ? nil : AggregateTable(combining: table.spec)
        sinks = table.spec.sinks
        let spec = table.spec
        rowNames = (spec.groupFields.map { topology.fields[$0] }
            + SumsFunction.outputs(sums: spec.sumFields.map { topology.fields[$0] }, weighted: spec.weightField != nil))
            .map(TopologyCompiler.jsonName)
        rowDecoder = RecordDecoder(topology)
        super.init(index: index, recordSinks: [])
    }

    /// Whether the table is a combiner whose partials go downstream at commit.
    var isCombiner: Bool { table.columnFamily == nil }

    /// A combiner's partials, as its task's output to the repartition topic.
    func output(_ edge: CompiledTopology.RepartitionEdge) -> CombinerOutput { CombinerOutput(edge: edge, table: table, topK: topK) }

    override var stores: [any StateStore] { isCombiner ? [] : [table] }

    override func process(_ record: Record, in task: StreamTask) throws {
        if let topK {
            if topK.isLate(record.timestamp, judgedBy: task.recordStreamTime) {
                task.metrics.lateRecords.add(1, ordering: .relaxed)
                return
            }
            if !isCombiner, let timers {
                // The record's epoch entry, then its group's total (a combiner sends the
                // epoch's partial; downstream `merge` adds it to both).
                topK.entryAdded(epoch: topK.epoch(of: record.timestamp), node: index, timers: timers)
                try table.function.add(record, to: table, groupedBy: self)
                epochKeyed = false
                defer { epochKeyed = true }
                return try table.function.add(record, to: table, groupedBy: self)
            }
        }
        touchTime = task.recordStreamTime
        guard !children.isEmpty else { return try table.function.add(record, to: table, groupedBy: self) }
        let e = try table.entry(for: groupKey(record))
        if table.counts[e] > 0 { try forwardRow(e, retraction: true, at: record.timestamp, offset: record.offset, in: task) }
        try table.function.add(record, to: table, groupedBy: self)
        if table.counts[e] > 0 { try forwardRow(e, retraction: false, at: record.timestamp, offset: record.offset, in: task) }
    }

    /// Merges an upstream partial of group `key` (released by the task's intake); with
    /// children, forwards the row's change as `process` does.
    func merge(partial value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, offset: Int64, in task: StreamTask) throws {
        let key = Array(key)
        if let topK, let timers {
            // Only epoch partials count; one of an epoch closed already cannot come from this
            // Eddy (upstream skips what is late for it) — a partial from before the top K, or
            // of another layout, is skipped and counted as late.
            let epoch = key.count > TopKPruning.epochHeaderBytes && key.starts(with: TopKPruning.epochMarker)
                ? TopKPruning.epoch(ofEpochKey: key) : nil
            guard let epoch, !topK.isClosed(epoch, at: task.streamTime) else {
                task.metrics.lateRecords.add(1, ordering: .relaxed)
                return
            }
            topK.entryAdded(epoch: epoch, node: index, timers: timers)
            table.merge(value, into: try table.entry(for: Array(key[TopKPruning.epochHeaderBytes...])))
        }
        let e = try table.entry(for: key)
        guard !children.isEmpty else { return table.merge(value, into: e) }
        if table.counts[e] > 0 { try forwardRow(e, retraction: true, at: task.streamTime, offset: offset, in: task) }
        table.merge(value, into: e)
        if table.counts[e] > 0 { try forwardRow(e, retraction: false, at: task.streamTime, offset: offset, in: task) }
    }

    /// Forwards entry `e` as a record: its group values and its outputs (the compiler lets
    /// only `aggregate` — count and sums — have children).
    private func forwardRow(_ e: Int, retraction: Bool, at time: Int64, offset: Int64, in task: StreamTask) throws {
        row.removeAll(keepingCapacity: true)
        row.append(UInt8(ascii: "{"))
        var value: [UInt8] = []
        for (i, name) in rowNames.enumerated() {
            if i > 0 { row.append(UInt8(ascii: ",")) }
            row.append(contentsOf: name)
            value.removeAll(keepingCapacity: true)
            if i < groupFields.count {
                table.groupValue(i, of: e, into: &value)
                appendJSONString(value[...], to: &row)
            } else {
                table.function.appendOutput(i - groupFields.count, of: e, in: table, to: &row)
            }
        }
        row.append(UInt8(ascii: "}"))
        try row.withUnsafeBytes { bytes in
            try rowDecoder.extract(bytes)
            try forward(Record(value: bytes, fields: rowDecoder, timestamp: time, offset: offset, retraction: retraction), in: task)
        }
    }

    /// The group key of `record` (`GroupKey`), in a buffer reused for every record; with a
    /// top K, and the epoch of its event time.
    @inline(__always)
    func groupKey(_ record: Record) -> [UInt8] {
        guard let topK, epochKeyed else {
            GroupKey.build(groupFields, of: record, into: &keyBuffer, scratch: &valueScratch)
            // Called exactly when a record adds to its group: that is a touch.
            if let expiry, let timers { expiry.touch(keyBuffer, at: touchTime, node: index, timers: timers, table: table) }
            return keyBuffer
        }
        GroupKey.build(groupFields, of: record, into: &groupBuffer, scratch: &valueScratch)
        keyBuffer.removeAll(keepingCapacity: true)
        let epoch = topK.epoch(of: record.timestamp)
        if epoch != headerEpoch { (headerEpoch, header) = (epoch, TopKPruning.epochHeader(epoch)) }
        keyBuffer.append(contentsOf: header)
        keyBuffer.append(contentsOf: groupBuffer)
        return keyBuffer
    }

    /// A state TTL's step is due: its idle groups leave. Or a top K's epoch closed: its
    /// entries join the kept values, pruned to the best k.
    override func timerFired(key: [UInt8], at time: Int64, in task: StreamTask) throws {
        if let expiry, let timers, IdleExpiry.isTimerKey(key) {
            let expired = try expiry.expire(timerKey: key, node: index, timers: timers, table: table)
            task.metrics.expiredGroups.add(expired, ordering: .relaxed)
            return
        }
        guard let topK, let timers, let scratch, let decay = table.function as? DecayFunction else { return }
        // Values in a scratch entry (a combiner's: memory only, so its lookups cannot throw).
        func load(_ values: [UInt8]?...) -> Int {
            scratch.removeAll()
            let s = scratch.entry(for: [], stored: nil)
            for value in values { value?.withUnsafeBytes { scratch.merge($0, into: s) } }
            return s
        }
        let pruned = try topK.close(timerKey: key, node: index, timers: timers, table: table,
                                    rank: { decay.rank(of: load($0), in: scratch) },
                                    combine: { scratch.encodedValue(of: load($0, $1)) })
        task.metrics.prunedNeighbours.add(pruned, ordering: .relaxed)
    }


    override func restored(staleKeys: [[UInt8]], of store: any StateStore) throws {
        for key in staleKeys { _ = try table.entry(for: key) }
    }

    override func renderView(into view: inout RedisViewWriter, wholeState: Bool) throws {
        guard !isCombiner, !sinks.isEmpty else { return }
        if wholeState { try table.markAllDirty() }
        let table = table
        for e in table.dirty {
            // A top K's epoch entries and kept values, and a state TTL's touch rows, are
            // bookkeeping: the groups are shown.
            if !AggregateTable.isGroupKey(table.keys[e]) { continue }
            let render: (OutputRef, inout [UInt8]) -> Void = { ref, out in
                switch ref {
                case .group(let i): table.groupValue(i, of: e, into: &out)
                case .output(let i, _): table.function.appendOutput(i, of: e, in: table, to: &out)
                case .field: break  // not reachable: aggregate sinks resolve to outputs only
                }
            }
            for sink in sinks {
                if sink.kind == .list {
                    view.setList(view.renderKey(of: sink, render), table.recent[e].newestFirst, ttlSeconds: sink.ttlSeconds)
                } else if table.counts[e] > 0 || table.recentLimit > 0 && !table.isEmpty(e) {
                    view.add(sink, render)
                } else {
                    // Every record of the group was taken back (an aggregate of rows): it is gone.
                    view.remove(sink, render)
                }
            }
        }
    }
}

/// A re-keying aggregate's partials, sent to its repartition topic at commit.
final class CombinerOutput: RepartitionOutput {
    let edge: CompiledTopology.RepartitionEdge
    let table: AggregateTable
    private let topK: TopKPruning?

    init(edge: CompiledTopology.RepartitionEdge, table: AggregateTable, topK: TopKPruning?) {
        self.edge = edge
        self.table = table
        self.topK = topK
    }

    /// A top K's partials go to the partition of their item.
    func partition(of key: [UInt8], count: Int) -> Int32 {
        topK?.partition(of: key, count: count) ?? Repartitions.partition(of: key, count: count)
    }

    var isEmpty: Bool { table.entryCount == 0 }
    /// 0: a combiner's bytes count in the write-back cache's share (`WriteBackCacheShare`).
    var pendingBytes: Int { 0 }
    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void) rethrows { try table.forEachDirty(body) }
    func clear() { table.removeAll() }
}
