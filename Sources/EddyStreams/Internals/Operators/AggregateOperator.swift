/// An aggregate node (`aggregate`, `recent`, `decay`) in one task: groups records by its
/// group fields into an `AggregateTable` and renders the dirty groups through its sinks.
///
/// In a source task, an aggregate that re-keys (its group lacks the source key) holds a
/// combiner instead of a store: partials gathered between two commits and sent to the
/// repartition topic at commit; the repartition task's instance owns the store, fed by
/// its `RepartitionIntake`, and renders the view.
final class AggregateOperator: OperatorNode {
    let table: AggregateTable
    private let groupFields: [Int]
    private let sinks: [CompiledSink]
    private var keyBuffer: [UInt8] = []

    init(index: Int, table: AggregateTable) {
        self.table = table
        groupFields = table.spec.groupFields
        sinks = table.spec.sinks
        super.init(index: index, recordSinks: [])
    }

    /// Whether the table is a combiner whose partials go downstream at commit.
    var isCombiner: Bool { table.columnFamily == nil }

    override var stores: [any StateStore] { isCombiner ? [] : [table] }

    override func process(_ record: Record, in task: StreamTask) throws {
        try table.function.add(record, to: table, groupedBy: self)
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
            for sink in sinks {
                view.add(sink) { ref, out in
                    switch ref {
                    case .group(let i): table.groupValue(i, of: e, into: &out)
                    case .output(let i, _): table.function.appendOutput(i, of: e, in: table, to: &out)
                    case .field: break  // not reachable: aggregate sinks resolve to outputs only
                    }
                }
            }
        }
    }
}
