import Foundation

/// `decay`: per group, an exponentially decayed sum of weights on event time. Records
/// whose weight field has no weight are skipped. Outputs: `count`, `score` (the sum as of
/// the group's latest event time), `last_time`, `rank`, and with a trend half-life
/// `long_score`, `long_rank`, `trend` (the same sum on that longer half-life).
///
/// Exact in any order: a replay, whose partials are combined and merged in another order
/// than the live run's, gives the same bits. Event time is cut into frames of
/// `frameHalfLives` half-lives; a record of weight w at time t adds w·2^(t/h − end of its
/// frame), a number that depends on the record alone, as a `FixedPointSum` (88 fraction
/// bits: at least 56 significant bits for the smallest term, 2^-32 of its weight) to its
/// frame's sum. An entry keeps the sums of the frame of its latest event time and of the
/// frame before, so moving to a later frame is a shift of whole sums, never a rounding: a
/// group's state is a function of the set of its records. Records in a frame two or more
/// before the latest record's are dropped, in every order alike (each is at least 32
/// half-lives older: under 2^-32 of its weight). Each frame sum holds less than 2^38
/// (2.7e11) of weight.
final class DecayFunction: AggregateFunction {
    let sumsPerEntry: Int
    let halfLifeMs: Double
    /// The long half-life the trend compares against; nil: no trend.
    let trendHalfLifeMs: Double?
    /// Before the frames: the decayed sum and the latest time as Float64s (and the long sum).
    var legacySumsPerEntry: Int? { trendHalfLifeMs == nil ? 2 : 3 }
    private let weightField: Int
    private let weights: [([UInt8], Double)]

    static let frameHalfLives = 32.0
    static let fractionBits = 88
    /// Numbers of an entry: its latest event time, then per half-life the sums of the
    /// latest frame and of the one before (two numbers each).
    private static let time = 0, sums = 1, trendSums = 5

    init(_ spec: CompiledTopology.Aggregate, halfLifeMs: Double, trendHalfLifeMs: Double? = nil) {
        self.halfLifeMs = halfLifeMs
        self.trendHalfLifeMs = trendHalfLifeMs
        sumsPerEntry = trendHalfLifeMs == nil ? 5 : 9
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
        if value.count == 8 * (1 + legacySumsPerEntry!) {
            // An older Eddy's value: its sum as of its time, added as one record of that weight.
            add(AggregateTable.number(0, in: value), at: AggregateTable.number(1, in: value), count: count,
                long: trendHalfLifeMs == nil ? 0 : AggregateTable.number(2, in: value), to: e, of: table)
            return
        }
        let time = AggregateTable.number(Self.time, in: value)
        moveToLatest(time, e, table)
        merge(AggregateTable.fixed(Self.sums, in: value), AggregateTable.fixed(Self.sums + 2, in: value), of: time, halfLifeMs,
              into: Self.sums, of: e, table)
        if let trendHalfLifeMs {
            merge(AggregateTable.fixed(Self.trendSums, in: value), AggregateTable.fixed(Self.trendSums + 2, in: value), of: time, trendHalfLifeMs,
                  into: Self.trendSums, of: e, table)
        }
        table.add(count: count, to: e)
    }

    /// Adds `count` records of weight `score` (`long` on the trend's half-life) as of event
    /// time `time` to entry `e`.
    @inline(__always)
    func add(_ score: Double, at time: Double, count: Int64, long: Double, to e: Int, of table: AggregateTable) {
        moveToLatest(time, e, table)
        merge(Self.term(score, time, halfLifeMs), .zero, of: time, halfLifeMs, into: Self.sums, of: e, table)
        if let trendHalfLifeMs {
            merge(Self.term(long, time, trendHalfLifeMs), .zero, of: time, trendHalfLifeMs, into: Self.trendSums, of: e, table)
        }
        table.add(count: count, to: e)
    }

    /// Makes `time` the entry's latest time if it is later, shifting its frame sums along.
    @inline(__always)
    private func moveToLatest(_ time: Double, _ e: Int, _ table: AggregateTable) {
        guard table.counts[e] != 0 else { return table.set(time, sum: Self.time, of: e) }
        let last = table.sum(Self.time, of: e)
        guard time > last else { return }
        table.set(time, sum: Self.time, of: e)
        shift(Self.sums, of: e, by: Self.frame(time, halfLifeMs) - Self.frame(last, halfLifeMs), table)
        if let trendHalfLifeMs { shift(Self.trendSums, of: e, by: Self.frame(time, trendHalfLifeMs) - Self.frame(last, trendHalfLifeMs), table) }
    }

    @inline(__always)
    private func shift(_ j: Int, of e: Int, by frames: Double, _ table: AggregateTable) {
        guard frames > 0 else { return }
        table.set(frames == 1 ? table.fixed(j, of: e) : .zero, fixed: j + 2, of: e)
        table.set(.zero, fixed: j, of: e)
    }

    /// Adds the frame sums (`latest`, `before`) of a value whose latest time is `time` to
    /// the entry's, which are at its latest time (already moved).
    @inline(__always)
    private func merge(_ latest: FixedPointSum, _ before: FixedPointSum, of time: Double, _ halfLife: Double,
                       into j: Int, of e: Int, _ table: AggregateTable) {
        let behind = Self.frame(table.sum(Self.time, of: e), halfLife) - Self.frame(time, halfLife)
        if behind == 0 {
            table.add(latest, fixed: j, to: e)
            table.add(before, fixed: j + 2, to: e)
        } else if behind == 1 {
            table.add(latest, fixed: j + 2, to: e)
        }
    }

    /// The frame of event time `time`: ⌊time / (half-life · frameHalfLives)⌋.
    @inline(__always)
    static func frame(_ time: Double, _ halfLife: Double) -> Double { (time / (halfLife * frameHalfLives)).rounded(.down) }

    /// Half-lives from the end of `time`'s frame to `time` (in [−frameHalfLives, 0)): from
    /// the difference of the two times in ms, exact, not of their quotients (a time of 2026
    /// is ~490,000 one-hour half-lives, which a double holds only to 1e-10).
    @inline(__always)
    static func sinceFrameEnd(_ time: Double, _ halfLife: Double) -> Double {
        let length = halfLife * frameHalfLives
        return (time - ((time / length).rounded(.down) + 1) * length) / halfLife
    }

    /// A record's term: `weight`·2^(half-lives from the end of its frame), in (2^-32, 1]·weight.
    @inline(__always)
    static func term(_ weight: Double, _ time: Double, _ halfLife: Double) -> FixedPointSum {
        FixedPointSum(weight * exp2(sinceFrameEnd(time, halfLife)), fractionBits: fractionBits)
    }

    /// log2 of the sum at the entry's latest time, plus that time in half-lives: orders
    /// entries by their value at any common time. (The frame sums are the value at the end
    /// of the latest frame, so this is log2 of them plus that end.)
    private func rank(_ j: Int, of e: Int, in table: AggregateTable, _ halfLife: Double) -> Double {
        log2(frameValue(j, of: e, in: table)) + (Self.frame(table.sum(Self.time, of: e), halfLife) + 1) * Self.frameHalfLives
    }

    /// The sum at the entry's latest time.
    private func score(_ j: Int, of e: Int, in table: AggregateTable, _ halfLife: Double) -> Double {
        frameValue(j, of: e, in: table) * exp2(-Self.sinceFrameEnd(table.sum(Self.time, of: e), halfLife))
    }

    /// The frame sums as one number, valued at the end of the latest frame.
    private func frameValue(_ j: Int, of e: Int, in table: AggregateTable) -> Double {
        table.fixed(j, of: e).double(fractionBits: Self.fractionBits)
            + table.fixed(j + 2, of: e).double(fractionBits: Self.fractionBits) * exp2(-Self.frameHalfLives)
    }

    func rank(of e: Int, in table: AggregateTable) -> Double { rank(Self.sums, of: e, in: table, halfLifeMs) }
    func score(of e: Int, in table: AggregateTable) -> Double { score(Self.sums, of: e, in: table, halfLifeMs) }
    func lastTime(of e: Int, in table: AggregateTable) -> Double { table.sum(Self.time, of: e) }

    func appendOutput(_ i: Int, of e: Int, in table: AggregateTable, to out: inout [UInt8]) {
        switch i {
        case 0: out.append(contentsOf: String(table.counts[e]).utf8)
        case 1: out.append(contentsOf: formatNumber(score(of: e, in: table)).utf8)
        case 2: out.append(contentsOf: formatNumber(lastTime(of: e, in: table)).utf8)
        case 3: out.append(contentsOf: formatNumber(rank(of: e, in: table)).utf8)
        case 4: out.append(contentsOf: formatNumber(score(Self.trendSums, of: e, in: table, trendHalfLifeMs!)).utf8)
        case 5: out.append(contentsOf: formatNumber(rank(Self.trendSums, of: e, in: table, trendHalfLifeMs!)).utf8)
        default: out.append(contentsOf: formatNumber(rank(of: e, in: table) - rank(Self.trendSums, of: e, in: table, trendHalfLifeMs!)).utf8)
        }
    }
}

extension AggregateTable {
    /// A decay entry's update and rank, on the table (tests drive tables directly).
    func addDecayed(_ score: Double, at time: Double, count: Int64, to e: Int) {
        (function as! DecayFunction).add(score, at: time, count: count, long: score, to: e, of: self)
    }

    func rank(of e: Int) -> Double { (function as! DecayFunction).rank(of: e, in: self) }
    func decayedScore(of e: Int) -> Double { (function as! DecayFunction).score(of: e, in: self) }
    func lastTime(of e: Int) -> Double { (function as! DecayFunction).lastTime(of: e, in: self) }
}
