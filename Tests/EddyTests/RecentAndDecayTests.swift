@testable import EddyGen
@testable import EddyStreams
import Foundation
import XCTest

/// The recent-values and decay aggregates: their order, limits, and that partials (what a
/// combiner sends through a repartition topic) merge into the same state as single records.
final class RecentAndDecayTests: XCTestCase {
    private func insert(_ list: inout RecentValues, _ value: String, _ time: Int64, keeping limit: Int = 3) {
        Array(value.utf8).withUnsafeBufferPointer { list.insert($0, at: time, keeping: limit) }
    }

    private func json(_ list: RecentValues) -> String {
        var out: [UInt8] = []
        list.appendJSON(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testRecentValuesKeepTheNewestByEventTimeTiesInArrivalOrder() {
        var list = RecentValues()
        insert(&list, "a", 10)
        insert(&list, "b", 20)
        insert(&list, "c", 20)
        XCTAssertEqual(json(list), #"["c","b","a"]"#)
        insert(&list, "d", 30)  // the oldest, a, goes
        XCTAssertEqual(json(list), #"["d","c","b"]"#)
        insert(&list, "late", 25)  // between c and d; b goes
        XCTAssertEqual(json(list), #"["d","late","c"]"#)
        insert(&list, "too-old", 5)  // older than everything kept: not kept
        XCTAssertEqual(json(list), #"["d","late","c"]"#)
        XCTAssertEqual(list.count, 3)
        insert(&list, "q\"\\\n", 40)
        XCTAssertEqual(json(list), #"["q\"\\\u000a","d","late"]"#)
    }

    func testRecentPartialsMergeIntoTheSameListAsSingleRecords() {
        let records: [(String, Int64)] = [("i1", 1), ("i2", 5), ("i3", 3), ("i4", 9), ("i5", 7), ("i6", 2), ("i7", 8), ("i8", 6)]
        var direct = RecentValues()
        for (v, t) in records { insert(&direct, v, t, keeping: 4) }
        // Two "upstream partitions", each combined, then merged downstream.
        var left = RecentValues(), right = RecentValues(), merged = RecentValues()
        for (i, (v, t)) in records.enumerated() { i % 2 == 0 ? insert(&left, v, t, keeping: 4) : insert(&right, v, t, keeping: 4) }
        for part in [left, right] { part.encoded.withUnsafeBytes { merged.merge($0, keeping: 4) } }
        XCTAssertEqual(json(direct), #"["i4","i7","i5","i8"]"#)
        XCTAssertEqual(json(merged), json(direct))
        // A truncated encoding is ignored from the damage on, not read past its end.
        var damaged = RecentValues()
        Array(direct.encoded.dropLast(1)).withUnsafeBytes { damaged.merge($0, keeping: 4) }
        XCTAssertEqual(json(damaged), #"["i7","i5","i8"]"#)
    }

    private let decaySpec = CompiledTopology.Aggregate(index: 0, name: "popularity", groupFields: [0], function: .decay(halfLifeMs: 3_600_000))

    func testDecayHalvesPerHalfLifeOnEventTimeAndRankOrdersByCurrentValue() {
        let table = AggregateTable(combining: decaySpec)
        let hot = table.entry(forTesting: "hot"), old = table.entry(forTesting: "old")
        let t0 = 1_767_225_600_000.0, hour = 3_600_000.0
        table.addDecayed(8, at: t0, count: 1, to: hot)
        table.addDecayed(2, at: t0 + 2 * hour, count: 1, to: hot)  // 8 halved twice, plus 2
        XCTAssertEqual(table.decayedScore(of: hot), 4, accuracy: 1e-12)
        XCTAssertEqual(table.lastTime(of: hot), t0 + 2 * hour)
        table.addDecayed(4, at: t0 + hour, count: 1, to: hot)  // late: decayed to the latest time
        XCTAssertEqual(table.decayedScore(of: hot), 6, accuracy: 1e-12)
        XCTAssertEqual(table.counts[hot], 3)
        XCTAssertEqual(table.lastTime(of: hot), t0 + 2 * hour)
        // 10 at t0 is worth 5 an hour later: less than hot's 6 two hours later, although
        // its stored score (10, as of its own last event) is larger.
        table.addDecayed(10, at: t0, count: 1, to: old)
        XCTAssertGreaterThan(table.decayedScore(of: old), table.decayedScore(of: hot))
        XCTAssertLessThan(table.rank(of: old), table.rank(of: hot))
        let now = t0 + 5 * hour
        XCTAssertEqual(exp2(table.rank(of: hot) - now / hour), 6 * exp2(-3), accuracy: 1e-9)
    }

    /// A replay combines and merges partials in another order than the live run (per
    /// upstream commit, in arrival order): the state must come out bit for bit the same
    /// (issue 13, item 6), and equal to the closed form Σ w·2^((t − latest)/h).
    func testDecayGivesTheSameBitsInEveryOrderAndGrouping() throws {
        for spec in [decaySpec, trendSpec] {
            var rng = SplitMix64(seed: 3)
            let hour = 3_600_000.0, t0 = 1_767_225_600_000.0
            // 20 half-lives, so no record falls out of the frames kept; out of order.
            let records = (0..<2_000).map { _ in (weight: Double(1 + rng.next() % 10) / 3, time: t0 + Double(rng.next() % UInt64(20 * hour))) }
            let reference = try XCTUnwrap(encoded(records.shuffled(using: &rng), spec: spec))
            for round in 0..<5 {
                // Combiners over random slices (upstream commits), merged in a random order.
                let slices = 1 + round * 3
                var partials: [[UInt8]] = []
                for slice in 0..<slices {
                    let part = records.enumerated().filter { $0.offset % slices == slice }.map(\.element)
                    partials.append(try XCTUnwrap(encoded(part.shuffled(using: &rng), spec: spec)))
                }
                let downstream = AggregateTable(combining: spec)
                let m = downstream.entry(forTesting: "i")
                for p in partials.shuffled(using: &rng) { p.withUnsafeBytes { downstream.merge($0, into: m) } }
                XCTAssertEqual(value(of: downstream), reference, "round \(round): \(slices) partials")
            }
            let table = AggregateTable(combining: spec)
            let e = table.entry(forTesting: "i")
            reference.withUnsafeBytes { table.merge($0, into: e) }
            let latest = records.map(\.time).max()!
            let closedForm = records.reduce(0.0) { $0 + $1.weight * exp2(($1.time - latest) / hour) }
            XCTAssertEqual(table.decayedScore(of: e), closedForm, accuracy: closedForm * 1e-12)
            XCTAssertEqual(table.lastTime(of: e), latest)
            XCTAssertEqual(table.counts[e], 2_000)
        }
    }

    /// Records more than two frames (32–64 half-lives) behind a group's latest are dropped,
    /// whether they come before or after the later records.
    func testRecordsTwoFramesBehindAreDroppedInEveryOrder() throws {
        let hour = 3_600_000.0, t0 = 1_767_225_600_000.0
        let recent = (0..<50).map { (weight: 1.0, time: t0 + 100 * hour + Double($0) * 60_000) }
        let ancient = [(weight: 5.0, time: t0)]
        let without = try XCTUnwrap(encoded(recent, spec: decaySpec))
        XCTAssertNotEqual(try XCTUnwrap(encoded(ancient + recent, spec: decaySpec)).count, 0)
        // The counts differ (the record is counted); the sums are those without it.
        XCTAssertEqual(Array(try XCTUnwrap(encoded(ancient + recent, spec: decaySpec)).dropFirst(8)), Array(without.dropFirst(8)))
        XCTAssertEqual(Array(try XCTUnwrap(encoded(recent + ancient, spec: decaySpec)).dropFirst(8)), Array(without.dropFirst(8)))
    }

    /// State and partials an older Eddy wrote (count, score as of its time, that time)
    /// merge as one record of that weight.
    func testAnOlderEddysDecayValueMergesAsOneRecord() throws {
        let hour = 3_600_000.0, t0 = 1_767_225_600_000.0
        var legacy: [UInt8] = []
        for word in [UInt64(7), 12.0.bitPattern, (t0 + hour).bitPattern] { withUnsafeBytes(of: word.littleEndian) { legacy.append(contentsOf: $0) } }
        let table = AggregateTable(combining: decaySpec)
        let e = table.entry(forTesting: "i")
        legacy.withUnsafeBytes { table.merge($0, into: e) }
        table.addDecayed(1, at: t0 + 2 * hour, count: 1, to: e)
        XCTAssertEqual(table.counts[e], 8)
        XCTAssertEqual(table.decayedScore(of: e), 12 / 2 + 1, accuracy: 1e-12)
    }

    private let trendSpec = CompiledTopology.Aggregate(index: 0, name: "trend", groupFields: [0], function: .decay(halfLifeMs: 3_600_000, trendHalfLifeMs: 86_400_000))

    /// The encoded value of one group fed `records` one by one.
    private func encoded(_ records: [(weight: Double, time: Double)], spec: CompiledTopology.Aggregate) -> [UInt8]? {
        let table = AggregateTable(combining: spec)
        let e = table.entry(forTesting: "i")
        for r in records { (table.function as! DecayFunction).add(r.weight, at: r.time, count: 1, long: r.weight, to: e, of: table) }
        return value(of: table)
    }

    private func value(of table: AggregateTable) -> [UInt8]? {
        var out: [UInt8]?
        table.forEachDirty { _, value in out = value }
        return out
    }
}

extension AggregateTable {
    /// The entry of a one-field group `value`.
    func entry(forTesting value: String) -> Int {
        var key: [UInt8] = []
        Array(value.utf8).withUnsafeBufferPointer { appendLengthPrefixed($0, to: &key) }
        return try! entry(for: key)
    }
}
