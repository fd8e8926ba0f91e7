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
/// bits: at least 56 significant bits for the smallest term, 2^-32 of a weight of 1) to its
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
    private let frames: Frames
    private let trendFrames: Frames?

    static let frameHalfLives = 32.0
    static let fractionBits = 88
    /// Numbers of an entry: its latest event time, then per half-life the sums of the
    /// latest frame and of the one before (two numbers each).
    private static let time = 0, sums = 1, trendSums = 5

    init(_ spec: CompiledTopology.Aggregate, halfLifeMs: Double, trendHalfLifeMs: Double? = nil) {
        self.halfLifeMs = halfLifeMs
        self.trendHalfLifeMs = trendHalfLifeMs
        frames = Frames(halfLife: halfLifeMs)
        trendFrames = trendHalfLifeMs.map(Frames.init)
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
        let last = moveToLatest(time, e, table)
        merge(value, Self.sums, of: time, frames, into: e, last: last, table)
        if let trendFrames { merge(value, Self.trendSums, of: time, trendFrames, into: e, last: last, table) }
        table.add(count: count, to: e)
    }

    /// Adds `count` records of weight `score` (`long` on the trend's half-life) as of event
    /// time `time` to entry `e`: one term to the sum of its frame (if that is one of the two
    /// kept), after shifting the entry's sums to a later frame if `time` is in one.
    @inline(__always)
    func add(_ score: Double, at time: Double, count: Int64, long: Double, to e: Int, of table: AggregateTable) {
        let last = moveToLatest(time, e, table)
        add(score, at: time, frames, Self.sums, to: e, last: last, table)
        if let trendFrames { add(long, at: time, trendFrames, Self.trendSums, to: e, last: last, table) }
        table.add(count: count, to: e)
    }

    @inline(__always)
    private func add(_ weight: Double, at time: Double, _ frames: Frames, _ j: Int, to e: Int, last: Double?, _ table: AggregateTable) {
        let n = frames.frame(time)
        let latest = last.map { Swift.max($0, time) } ?? time
        let latestFrame = latest == time ? n : frames.frame(latest)
        if let last, time > last { shift(j, of: e, by: n - frames.frame(last), table) }
        let behind = latestFrame - n
        guard behind <= 1 else { return }
        table.add(frames.term(weight, time, frame: n), fixed: behind == 0 ? j : j + 2, to: e)
    }

    /// Adds the frame sums at `j` of an encoded value whose latest time is `time`.
    private func merge(_ value: UnsafeRawBufferPointer, _ j: Int, of time: Double, _ frames: Frames, into e: Int, last: Double?, _ table: AggregateTable) {
        let n = frames.frame(time)
        if let last, time > last { shift(j, of: e, by: n - frames.frame(last), table) }
        let behind = frames.frame(table.sum(Self.time, of: e)) - n
        if behind == 0 {
            table.add(AggregateTable.fixed(j, in: value), fixed: j, to: e)
            table.add(AggregateTable.fixed(j + 2, in: value), fixed: j + 2, to: e)
        } else if behind == 1 {
            table.add(AggregateTable.fixed(j, in: value), fixed: j + 2, to: e)
        }
    }

    /// Makes `time` the entry's latest time if it is later; returns the latest time before
    /// (nil: the entry is new). The caller shifts the frame sums.
    @inline(__always)
    private func moveToLatest(_ time: Double, _ e: Int, _ table: AggregateTable) -> Double? {
        guard table.counts[e] != 0 else {
            table.set(time, sum: Self.time, of: e)
            return nil
        }
        let last = table.sum(Self.time, of: e)
        if time > last { table.set(time, sum: Self.time, of: e) }
        return last
    }

    /// Moves the sums at `j` on by `frames` frames: the latest becomes the one before, or
    /// both are dropped.
    @inline(__always)
    private func shift(_ j: Int, of e: Int, by frames: Double, _ table: AggregateTable) {
        guard frames > 0 else { return }
        table.set(frames == 1 ? table.fixed(j, of: e) : .zero, fixed: j + 2, of: e)
        table.set(.zero, fixed: j, of: e)
    }

    /// log2 of the sum at the entry's latest time, plus that time in half-lives: orders
    /// entries by their value at any common time. (The frame sums are the value at the end
    /// of the latest frame, so this is log2 of them plus that end.)
    private func rank(_ j: Int, _ frames: Frames, of e: Int, in table: AggregateTable) -> Double {
        log2(frameValue(j, of: e, in: table)) + (frames.frame(table.sum(Self.time, of: e)) + 1) * Self.frameHalfLives
    }

    /// The sum at the entry's latest time.
    private func score(_ j: Int, _ frames: Frames, of e: Int, in table: AggregateTable) -> Double {
        frameValue(j, of: e, in: table) * frames.fromFrameEnd(table.sum(Self.time, of: e))
    }

    /// The frame sums as one number, valued at the end of the latest frame.
    private func frameValue(_ j: Int, of e: Int, in table: AggregateTable) -> Double {
        table.fixed(j, of: e).double(fractionBits: Self.fractionBits)
            + table.fixed(j + 2, of: e).double(fractionBits: Self.fractionBits) * exp2(-Self.frameHalfLives)
    }

    func rank(of e: Int, in table: AggregateTable) -> Double { rank(Self.sums, frames, of: e, in: table) }
    func score(of e: Int, in table: AggregateTable) -> Double { score(Self.sums, frames, of: e, in: table) }
    func lastTime(of e: Int, in table: AggregateTable) -> Double { table.sum(Self.time, of: e) }

    func appendOutput(_ i: Int, of e: Int, in table: AggregateTable, to out: inout [UInt8]) {
        switch i {
        case 0: out.append(contentsOf: String(table.counts[e]).utf8)
        case 1: out.append(contentsOf: formatNumber(score(of: e, in: table)).utf8)
        case 2: out.append(contentsOf: formatNumber(lastTime(of: e, in: table)).utf8)
        case 3: out.append(contentsOf: formatNumber(rank(of: e, in: table)).utf8)
        case 4: out.append(contentsOf: formatNumber(score(Self.trendSums, trendFrames!, of: e, in: table)).utf8)
        case 5: out.append(contentsOf: formatNumber(rank(Self.trendSums, trendFrames!, of: e, in: table)).utf8)
        default: out.append(contentsOf: formatNumber(rank(of: e, in: table) - rank(Self.trendSums, trendFrames!, of: e, in: table)).utf8)
        }
    }

    /// One half-life's frames of `frameHalfLives` half-lives. Which frame a time is in may
    /// be any function of the time alone, used alike everywhere: multiplications by
    /// reciprocals, not divisions, on the per-record path.
    private struct Frames {
        private let length: Double, perLength: Double, perHalfLife: Double

        init(halfLife: Double) {
            length = halfLife * DecayFunction.frameHalfLives
            perLength = 1 / length
            perHalfLife = 1 / halfLife
        }

        @inline(__always)
        func frame(_ time: Double) -> Double { (time * perLength).rounded(.down) }

        /// A record's term: `weight`·2^(half-lives from the end of its frame `n` to `time`),
        /// in (2^-32, 1]·weight. From the difference of the two times in ms, exact, not of
        /// their quotients: a time of 2026 is ~490,000 one-hour half-lives, which a double
        /// holds only to 1e-10.
        @inline(__always)
        func term(_ weight: Double, _ time: Double, frame n: Double) -> FixedPointSum {
            FixedPointSum(weight * exp2((time - (n + 1) * length) * perHalfLife), fractionBits: DecayFunction.fractionBits)
        }

        /// 2^(half-lives from `time` to the end of its frame).
        func fromFrameEnd(_ time: Double) -> Double { exp2(((frame(time) + 1) * length - time) * perHalfLife) }
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
