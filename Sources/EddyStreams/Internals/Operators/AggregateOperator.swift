/// An aggregate node (`aggregate`, `recent`, `decay`) in one task: groups records by its
/// group fields into an `AggregateTable` and renders the dirty groups through its sinks.
///
/// In a source task, an aggregate that re-keys (its group lacks the source key) holds a
/// combiner instead of a store: partials gathered between two commits and sent to the
/// repartition topic at commit; the repartition task's instance owns the store, fed by
/// its `RepartitionIntake`, and renders the view.
///
/// With children (a further `aggregate` of its rows, as Kafka Streams'
/// KTable.groupBy().aggregate()), each record's change of a row is forwarded as the row's
/// old values, a retraction, then its new ones, as JSON records with the group fields and
/// outputs: the child subtracts the one and adds the other. A group whose count falls to 0
/// (a child's, after retractions) leaves Redis.
final class AggregateOperator: OperatorNode {
    let table: AggregateTable
    private let groupFields: [Int]
    private let sinks: [CompiledSink]
    private var keyBuffer: [UInt8] = []
    /// For forwarding rows: `"name":` per group field, then per output; the rows' decoder.
    private let rowNames: [[UInt8]]
    private let rowDecoder: RecordDecoder
    private var row: [UInt8] = []

    init(index: Int, table: AggregateTable, topology: CompiledTopology) {
        self.table = table
        groupFields = table.spec.groupFields
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

    override var stores: [any StateStore] { isCombiner ? [] : [table] }

    override func process(_ record: Record, in task: StreamTask) throws {
        guard !children.isEmpty else { return try table.function.add(record, to: table, groupedBy: self) }
        let e = try table.entry(for: groupKey(record))
        if table.counts[e] > 0 { try forwardRow(e, retraction: true, causedBy: record, in: task) }
        try table.function.add(record, to: table, groupedBy: self)
        if table.counts[e] > 0 { try forwardRow(e, retraction: false, causedBy: record, in: task) }
    }

    /// Forwards entry `e` as a record: its group values and its outputs (the compiler lets
    /// only `aggregate` — count and sums — have children).
    private func forwardRow(_ e: Int, retraction: Bool, causedBy record: Record, in task: StreamTask) throws {
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
            try forward(Record(value: bytes, fields: rowDecoder, timestamp: record.timestamp, offset: record.offset, retraction: retraction), in: task)
        }
    }

    /// The group key of `record`: each group field's value, unescaped, length-prefixed.
    @inline(__always)
    func groupKey(_ record: Record) -> [UInt8] {
        keyBuffer.removeAll(keepingCapacity: true)
        let fields = record.fields
        for id in groupFields {
            if fields.slots[id].escaped {
                var decoded: [UInt8] = []
                fields.appendValue(id, from: record.value, to: &decoded)
                decoded.withUnsafeBufferPointer { appendLengthPrefixed($0, to: &keyBuffer) }
            } else {
                appendLengthPrefixed(fields.rawBytes(id, from: record.value), to: &keyBuffer)
            }
        }
        return keyBuffer
    }

    override func restored(staleKeys: [[UInt8]], of store: any StateStore) throws {
        for key in staleKeys { _ = try table.entry(for: key) }
    }

    override func renderView(into view: inout RedisViewWriter, wholeState: Bool) throws {
        guard !isCombiner, !sinks.isEmpty else { return }
        if wholeState { try table.markAllDirty() }
        let table = table
        for e in table.dirty {
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
                } else if table.counts[e] > 0 || table.recentLimit > 0 {
                    view.add(sink, render)
                } else {
                    // Every record of the group was taken back (an aggregate of rows): it is gone.
                    view.remove(sink, render)
                }
            }
        }
    }
}
