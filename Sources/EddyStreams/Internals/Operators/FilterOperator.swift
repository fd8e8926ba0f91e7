/// `filter`: forwards the records whose field satisfies the condition.
final class FilterOperator: OperatorNode {
    private let field: Int
    private let condition: Topology.Condition
    /// The condition's values, as bytes.
    private let values: [[UInt8]]

    init(index: Int, field: Int, condition: Topology.Condition, recordSinks: [CompiledSink]) {
        self.field = field
        self.condition = condition
        switch condition {
        case .equals(let v): values = [Array(v.utf8)]
        case .oneOf(let vs), .noneOf(let vs): values = vs.map { Array($0.utf8) }
        case .exists: values = []
        }
        super.init(index: index, recordSinks: recordSinks)
    }

    override func process(_ record: Record, in task: StreamTask) throws {
        if matches(record) { try forward(record, in: task) }
    }

    @inline(__always)
    private func matches(_ record: Record) -> Bool {
        let fields = record.fields
        switch condition {
        case .exists: return fields.slots[field].kind != .absent && fields.slots[field].kind != .null
        case .equals, .oneOf: return values.contains { fields.equals(field, $0, from: record.value) }
        case .noneOf: return !values.contains { fields.equals(field, $0, from: record.value) }
        }
    }
}
