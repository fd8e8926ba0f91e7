/// The upstream half of a node that re-keys records (a session or pairs node whose group
/// lacks its sub-topology's key, or a model): it keeps the records that reach the node, keyed by the
/// node's group, until the commit sends them to the node's repartition topic
/// (`RepartitionOutput`); the node itself runs in the tasks of that topic, on the records in
/// the order they arrive there. Records are copied once, into one buffer per commit.
final class RecordRepartitionOperator: OperatorNode, RepartitionOutput {
    let edge: CompiledTopology.RepartitionEdge
    private var records = KeyedRecordBuffer()
    private var keyBuffer: [UInt8] = []
    private var scratch: [UInt8] = []
    private var value: [UInt8] = []

    init(index: Int, edge: CompiledTopology.RepartitionEdge) {
        self.edge = edge
        super.init(index: index, recordSinks: [])
    }

    override func process(_ record: Record, in task: StreamTask) throws {
        GroupKey.build(edge.groupFields, of: record, into: &keyBuffer, scratch: &scratch)
        // No group fields (a model): one key, so one partition, for every record. Not an
        // empty key: that means "nothing for this partition" to the intake.
        if edge.groupFields.isEmpty { keyBuffer = Self.singleKey }
        RepartitionedRecord.encode(record, streamTime: task.recordStreamTime, into: &value)
        records.append(key: keyBuffer, value: value)
    }

    /// The key of a node without group fields: one empty group value (length 0).
    static let singleKey: [UInt8] = [0, 0, 0, 0]

    var isEmpty: Bool { records.isEmpty }
    var pendingBytes: Int { records.byteCount }

    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void) rethrows {
        try records.forEach(body)
    }

    func clear() { records.removeAll() }
}
