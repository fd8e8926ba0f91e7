/// `aggregate`: per group, the record count, the sum of each `sum` field and, with
/// `weights`, the weighted count. Outputs: `count`, `sum_<field>`…, `weighted_count`.
final class SumsFunction: AggregateFunction {
    let sumsPerEntry: Int
    private let sumFields: [Int]
    private let weightField: Int?
    private let weights: [([UInt8], Double)]

    init(_ spec: CompiledTopology.Aggregate) {
        sumFields = spec.sumFields
        weightField = spec.weightField
        weights = spec.weights
        sumsPerEntry = spec.sumFields.count + (spec.weightField == nil ? 0 : 1)
    }

    /// Output names after the group fields, in output order.
    static func outputs(sums: [String], weighted: Bool) -> [String] {
        ["count"] + sums.map { "sum_\($0)" } + (weighted ? ["weighted_count"] : [])
    }

    /// A retraction (an upstream aggregate's old row) counts −1 and subtracts its values.
    @inline(__always)
    func add(_ record: Record, to table: AggregateTable, groupedBy aggregate: AggregateOperator) throws {
        let e = try table.entry(for: aggregate.groupKey(record))
        let sign: Double = record.retraction ? -1 : 1
        table.add(count: record.retraction ? -1 : 1, to: e)
        let fields = record.fields
        for (j, id) in sumFields.enumerated() where fields.slots[id].kind == .number {
            table.add(sign * fields.double(id, from: record.value), sum: j, to: e)
        }
        if let weightField, let weight = weights.first(where: { fields.equals(weightField, $0.0, from: record.value) })?.1 {
            table.add(sign * weight, sum: sumFields.count, to: e)
        }
    }

    func merge(_ value: UnsafeRawBufferPointer, into e: Int, of table: AggregateTable) {
        table.add(count: AggregateTable.count(in: value), to: e)
        for j in 0..<sumsPerEntry { table.add(AggregateTable.number(j, in: value), sum: j, to: e) }
    }

    func appendOutput(_ i: Int, of e: Int, in table: AggregateTable, to out: inout [UInt8]) {
        if i == 0 {
            out.append(contentsOf: String(table.counts[e]).utf8)
        } else {
            out.append(contentsOf: formatNumber(table.sum(i - 1, of: e)).utf8)
        }
    }
}
