/// `join`: enriches each record with columns of a global table's row (`Topology.Join`).
///
/// The joined record is the record's JSON without its own fields of the joined names, with
/// the columns appended as the row wrote them. It is decoded again with this operator's
/// decoder (the topology's field ids), so downstream operators read it like any record.
final class JoinOperator: OperatorNode {
    struct Spec: Sendable {
        /// The table's place in `CompiledTopology.tables`.
        let table: Int
        /// The field holding the row's key.
        let on: Int
        /// Per joined field: its column in the table, its field id, and `"name":` as JSON.
        let columns: [Int]
        let fieldIDs: [Int]
        let names: [[UInt8]]
        let missing: Topology.Join.MissingRow
        /// Whether the records joined are source records: only those can be dead-lettered
        /// (a closed session or an aggregate's row that cannot be used is dropped, counted).
        let readsSource: Bool
        /// Joined fields downstream operators need present (group fields) or numeric (sums,
        /// prices, scores): checked on the joined record, as the source checks its own.
        var required: [Int] = []
        var numeric: [Int] = []
    }

    private let spec: Spec
    private let table: GlobalTable
    private let decoder: RecordDecoder
    private let fieldNames: [String]
    private let metrics: StreamsMetrics
    private var key: [UInt8] = []
    private var joined: [UInt8] = []
    /// Misses since the last commit (metrics are added per commit, not per record).
    private var misses = 0

    init(index: Int, spec: Spec, table: GlobalTable, topology: CompiledTopology, metrics: StreamsMetrics, recordSinks: [CompiledSink]) {
        self.spec = spec
        self.table = table
        self.metrics = metrics
        decoder = RecordDecoder(topology)
        fieldNames = topology.fields
        super.init(index: index, recordSinks: recordSinks)
    }

    override func process(_ record: Record, in task: StreamTask) throws {
        key.removeAll(keepingCapacity: true)
        let kind = record.fields.slots[spec.on].kind
        var row: [[UInt8]?]?
        if kind != .absent && kind != .null {
            record.fields.appendValue(spec.on, from: record.value, to: &key)
            row = table.row(key)
        }
        if row == nil {
            misses += 1
            switch spec.missing {
            case .drop: return
            case .deadLetter:
                task.deadLetter(DeadLetterReason(category: .missingRow, message: kind == .absent || kind == .null
                    ? "no field '\(fieldNames[spec.on])' to look up in table \(table.name)"
                    : "table \(table.name) has no row '\(String(decoding: key, as: UTF8.self))'"))
                return
            case .null: break
            }
        }
        build(from: record, row: row)
        try joined.withUnsafeBytes { value in
            try decoder.extract(value)
            if let problem = check() {
                if spec.readsSource { task.deadLetter(problem) } else { misses += 1 }
                return
            }
            try forward(Record(value: value, fields: decoder, timestamp: record.timestamp, offset: record.offset), in: task)
        }
    }

    /// The record's JSON object without its own fields of the joined names, then the
    /// joined columns.
    private func build(from record: Record, row: [[UInt8]?]?) {
        RecordRewrite.rewrite(record, removing: spec.fieldIDs, appending: spec.columns.count, into: &joined) { j, out in
            out.append(contentsOf: spec.names[j])
            if let raw = row?[spec.columns[j]] ?? nil { out.append(contentsOf: raw) } else { out.append(contentsOf: Self.null) }
        }
    }

    private static let null = Array("null".utf8)

    /// A joined field that downstream operators cannot use, as the source decoder would
    /// have said it.
    private func check() -> DeadLetterReason? {
        for id in spec.required {
            let slot = decoder.slots[id]
            if slot.kind == .absent || slot.kind == .null || (slot.kind == .string && slot.length == 0) {
                return DeadLetterReason(category: .missingField, message: "field '\(fieldNames[id])' from table \(table.name) (row '\(String(decoding: key, as: UTF8.self))') is missing")
            }
        }
        for id in spec.numeric {
            let slot = decoder.slots[id]
            if slot.kind != .number && slot.kind != .absent && slot.kind != .null {
                return DeadLetterReason(category: .wrongType, message: "field '\(fieldNames[id])' from table \(table.name) (row '\(String(decoding: key, as: UTF8.self))') is a \(slot.typeName), expected a number")
            }
        }
        return nil
    }

    override func committed() {
        guard misses > 0 else { return }
        metrics.joinMisses.add(misses, ordering: .relaxed)
        misses = 0
    }
}
