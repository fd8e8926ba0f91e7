/// What an aggregate operator computes per group, over the columns of its `AggregateTable`
/// (a count, `sumsPerEntry` numbers, and for `recent` a list of values): how a record
/// updates an entry, how two encoded values merge (a stored value into the cache, or an
/// upstream partial downstream — so every aggregate combines associatively and keeps the
/// combine-before-repartition path), and how the entry renders as the node's outputs.
/// One class per aggregate operator, in that operator's file.
protocol AggregateFunction: AnyObject {
    /// Numbers per entry after the count.
    var sumsPerEntry: Int { get }
    /// Values kept per entry (`recent`); 0 for the others.
    var recentLimit: Int { get }
    /// Whether each value is kept once (`recent` with `distinct`).
    var recentDistinct: Bool { get }
    /// Numbers per entry in the layout an older Eddy wrote, which `merge` still reads
    /// (stored state and partials from before an upgrade); nil: the layout never changed.
    var legacySumsPerEntry: Int? { get }
    /// Adds `record` to its group, or skips it; `aggregate.groupKey` is the group's key.
    func add(_ record: Record, to table: AggregateTable, groupedBy aggregate: AggregateOperator) throws
    /// Adds an encoded value of the right size to entry `e`.
    func merge(_ value: UnsafeRawBufferPointer, into e: Int, of table: AggregateTable)
    /// Appends the text of output `i` (as the compiler numbered the function's outputs).
    func appendOutput(_ i: Int, of e: Int, in table: AggregateTable, to out: inout [UInt8])
}

extension AggregateFunction {
    var recentLimit: Int { 0 }
    var recentDistinct: Bool { false }
    var legacySumsPerEntry: Int? { nil }
}

extension CompiledTopology.Aggregate.Function {
    /// The function object of a compiled aggregate: the one place an aggregate's kind picks
    /// its implementation.
    func make(_ spec: CompiledTopology.Aggregate) -> any AggregateFunction {
        switch self {
        case .sums: return SumsFunction(spec)
        case .recent(let field, let size, let distinct): return RecentFunction(field: field, size: size, distinct: distinct)
        case .decay(let halfLifeMs, let trendHalfLifeMs): return DecayFunction(spec, halfLifeMs: halfLifeMs, trendHalfLifeMs: trendHalfLifeMs)
        }
    }
}
