/// `aggregate`: per group, the record count, the sum of each `sum` field and, with
/// `weights`, the weighted count. Outputs: `count`, `sum_<field>`…, `weighted_count`.
///
/// The sums are `FixedPointSum`s with 64 fraction bits (two numbers each): exact, so
/// partials merged in any order, and retractions, give the same bits (|sum| < 2^62 ≈
/// 4.6e18; a term below 2^-11 keeps its bits down to 2^-64).
final class SumsFunction: AggregateFunction {
    let sumsPerEntry: Int
    /// One number per sum: the Float64 layout before the sums were fixed-point.
    let legacySumsPerEntry: Int?
    private let sumFields: [Int]
    private let weightField: Int?
    private let weights: [([UInt8], Double)]
    private let sumCount: Int
    static let fractionBits = 64

    init(_ spec: CompiledTopology.Aggregate) {
        sumFields = spec.sumFields
        weightField = spec.weightField
        weights = spec.weights
        sumCount = spec.sumFields.count + (spec.weightField == nil ? 0 : 1)
        sumsPerEntry = 2 * sumCount
        legacySumsPerEntry = sumCount == 0 ? nil : sumCount
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
            table.add(FixedPointSum(sign * fields.double(id, from: record.value), fractionBits: Self.fractionBits), fixed: 2 * j, to: e)
        }
        if let weightField, let weight = weights.first(where: { fields.equals(weightField, $0.0, from: record.value) })?.1 {
            table.add(FixedPointSum(sign * weight, fractionBits: Self.fractionBits), fixed: 2 * sumFields.count, to: e)
        }
    }

    func merge(_ value: UnsafeRawBufferPointer, into e: Int, of table: AggregateTable) {
        table.add(count: AggregateTable.count(in: value), to: e)
        let legacy = value.count == 8 * (1 + sumCount) && sumCount > 0
        for j in 0..<sumCount {
            let term = legacy ? FixedPointSum(AggregateTable.number(j, in: value), fractionBits: Self.fractionBits) : AggregateTable.fixed(2 * j, in: value)
            table.add(term, fixed: 2 * j, to: e)
        }
    }

    func appendOutput(_ i: Int, of e: Int, in table: AggregateTable, to out: inout [UInt8]) {
        if i == 0 {
            out.append(contentsOf: String(table.counts[e]).utf8)
        } else {
            out.append(contentsOf: formatNumber(table.fixed(2 * (i - 1), of: e).double(fractionBits: Self.fractionBits)).utf8)
        }
    }
}
