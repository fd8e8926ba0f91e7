/// `project` and `passthrough`: forwards every record. A projection only narrows what later
/// nodes may name, which the compiler checks; at run time nothing is copied.
final class PassOperator: OperatorNode {
    override func process(_ record: Record, in task: StreamTask) throws {
        try forward(record, in: task)
    }
}
