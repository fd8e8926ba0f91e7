/// `recent`: per group, the `size` most recent values of a field by event time (ties in
/// arrival order), each value once if `distinct`. Outputs: `count` (records seen) and
/// `recent` (a JSON array, newest first).
final class RecentFunction: AggregateFunction {
    let sumsPerEntry = 0
    let recentLimit: Int
    let recentDistinct: Bool
    private let field: Int
    private var valueBuffer: [UInt8] = []

    init(field: Int, size: Int, distinct: Bool = false) {
        self.field = field
        recentLimit = size
        recentDistinct = distinct
    }

    static let outputs = ["count", "recent"]

    @inline(__always)
    func add(_ record: Record, to table: AggregateTable, groupedBy aggregate: AggregateOperator) throws {
        let e = try table.entry(for: aggregate.groupKey(record))
        valueBuffer.removeAll(keepingCapacity: true)
        record.fields.appendValue(field, from: record.value, to: &valueBuffer)
        valueBuffer.withUnsafeBufferPointer { table.addRecent($0, at: record.timestamp, to: e) }
    }

    func merge(_ value: UnsafeRawBufferPointer, into e: Int, of table: AggregateTable) {
        table.add(count: AggregateTable.count(in: value), to: e)
        table.mergeRecent(value, into: e)
    }

    func appendOutput(_ i: Int, of e: Int, in table: AggregateTable, to out: inout [UInt8]) {
        if i == 0 {
            out.append(contentsOf: String(table.counts[e]).utf8)
        } else {
            table.recent[e].appendJSON(to: &out)
        }
    }
}
