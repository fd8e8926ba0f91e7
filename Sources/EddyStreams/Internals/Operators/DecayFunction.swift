import Foundation

/// `decay`: per group, an exponentially decayed sum of weights on event time — two numbers,
/// the decayed sum at the group's latest event time and that time; with a trend half-life
/// a third, the same sum decayed on that longer half-life. Records whose weight field has
/// no weight are skipped. Outputs: `count`, `score`, `last_time`, `rank`, and with a trend
/// `long_score`, `long_rank`, `trend`.
final class DecayFunction: AggregateFunction {
    let sumsPerEntry: Int
    let halfLifeMs: Double
    /// The long half-life the trend compares against; nil: no trend.
    let trendHalfLifeMs: Double?
    private let weightField: Int
    private let weights: [([UInt8], Double)]

    init(_ spec: CompiledTopology.Aggregate, halfLifeMs: Double, trendHalfLifeMs: Double? = nil) {
        self.halfLifeMs = halfLifeMs
        self.trendHalfLifeMs = trendHalfLifeMs
        sumsPerEntry = trendHalfLifeMs == nil ? 2 : 3
        weightField = spec.weightField ?? 0
        weights = spec.weights
    }

    static func outputs(trend: Bool) -> [String] {
        ["count", "score", "last_time", "rank"] + (trend ? ["long_score", "long_rank", "trend"] : [])
    }

    @inline(__always)
    func add(_ record: Record, to table: AggregateTable, groupedBy aggregate: AggregateOperator) throws {
        // Records without a weight would only add an empty group.
        guard let weight = weights.first(where: { record.fields.equals(weightField, $0.0, from: record.value) })?.1 else { return }
        let e = try table.entry(for: aggregate.groupKey(record))
        add(weight, at: Double(record.timestamp), count: 1, long: weight, to: e, of: table)
    }

    func merge(_ value: UnsafeRawBufferPointer, into e: Int, of table: AggregateTable) {
        let count = AggregateTable.count(in: value)
        guard count > 0 else { return }
        add(AggregateTable.number(0, in: value), at: AggregateTable.number(1, in: value), count: count,
            long: trendHalfLifeMs == nil ? 0 : AggregateTable.number(2, in: value), to: e, of: table)
    }

    /// Adds `count` records of decayed weight `score` (`long` on the trend's half-life) as
    /// of event time `time` to entry `e`: both sides are decayed to the later of the two
    /// times and added. Associative and commutative (up to rounding), so partials combine
    /// like single records.
    @inline(__always)
    func add(_ score: Double, at time: Double, count: Int64, long: Double, to e: Int, of table: AggregateTable) {
        if table.counts[e] == 0 {
            table.set(score, sum: 0, of: e)
            table.set(time, sum: 1, of: e)
            if trendHalfLifeMs != nil { table.set(long, sum: 2, of: e) }
        } else if let trendHalfLifeMs {
            let last = table.sum(1, of: e)
            // The side that is older decays by how much older it is.
            let (stored, added) = time >= last ? (time - last, 0.0) : (0.0, last - time)
            table.set(table.sum(0, of: e) * decay(stored, halfLifeMs) + score * decay(added, halfLifeMs), sum: 0, of: e)
            table.set(table.sum(2, of: e) * decay(stored, trendHalfLifeMs) + long * decay(added, trendHalfLifeMs), sum: 2, of: e)
            table.set(max(time, last), sum: 1, of: e)
        } else if time >= table.sum(1, of: e) {
            // Without a trend, the one sum as it always was (one exp2 per record: the
            // combiner's hot path in item popularity).
            table.set(table.sum(0, of: e) * decay(time - table.sum(1, of: e), halfLifeMs) + score, sum: 0, of: e)
            table.set(time, sum: 1, of: e)
        } else {
            table.set(table.sum(0, of: e) + score * decay(table.sum(1, of: e) - time, halfLifeMs), sum: 0, of: e)
        }
        table.add(count: count, to: e)
    }

    /// log2(score) + time/half-life: orders entries by their value at any common time.
    func rank(of e: Int, in table: AggregateTable) -> Double { log2(table.sum(0, of: e)) + table.sum(1, of: e) / halfLifeMs }

    /// The same on the trend's half-life.
    private func longRank(of e: Int, in table: AggregateTable) -> Double { log2(table.sum(2, of: e)) + table.sum(1, of: e) / trendHalfLifeMs! }

    func appendOutput(_ i: Int, of e: Int, in table: AggregateTable, to out: inout [UInt8]) {
        switch i {
        case 0: out.append(contentsOf: String(table.counts[e]).utf8)
        case 1, 2: out.append(contentsOf: formatNumber(table.sum(i - 1, of: e)).utf8)
        case 3: out.append(contentsOf: formatNumber(rank(of: e, in: table)).utf8)
        case 4: out.append(contentsOf: formatNumber(table.sum(2, of: e)).utf8)
        case 5: out.append(contentsOf: formatNumber(longRank(of: e, in: table)).utf8)
        default: out.append(contentsOf: formatNumber(rank(of: e, in: table) - longRank(of: e, in: table)).utf8)
        }
    }

    @inline(__always) private func decay(_ ms: Double, _ halfLife: Double) -> Double { exp2(-ms / halfLife) }
}

extension AggregateTable {
    /// A decay entry's update and rank, on the table (tests drive tables directly).
    func addDecayed(_ score: Double, at time: Double, count: Int64, to e: Int) {
        (function as! DecayFunction).add(score, at: time, count: count, long: score, to: e, of: self)
    }

    func rank(of e: Int) -> Double { (function as! DecayFunction).rank(of: e, in: self) }
}
