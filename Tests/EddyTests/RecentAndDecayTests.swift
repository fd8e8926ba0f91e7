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
        XCTAssertEqual(table.sum(0, of: hot), 4, accuracy: 1e-12)
        XCTAssertEqual(table.sum(1, of: hot), t0 + 2 * hour)
        table.addDecayed(4, at: t0 + hour, count: 1, to: hot)  // late: decayed to the latest time
        XCTAssertEqual(table.sum(0, of: hot), 6, accuracy: 1e-12)
        XCTAssertEqual(table.counts[hot], 3)
        XCTAssertEqual(table.sum(1, of: hot), t0 + 2 * hour)
        // 10 at t0 is worth 5 an hour later: less than hot's 6 two hours later, although
        // its stored score (10, as of its own last event) is larger.
        table.addDecayed(10, at: t0, count: 1, to: old)
        XCTAssertGreaterThan(table.sum(0, of: old), table.sum(0, of: hot))
        XCTAssertLessThan(table.rank(of: old), table.rank(of: hot))
        let now = t0 + 5 * hour
        XCTAssertEqual(exp2(table.rank(of: hot) - now / hour), 6 * exp2(-3), accuracy: 1e-9)
    }

    func testDecayPartialsMergeIntoTheSameValueAsSingleRecords() throws {
        var rng = SplitMix64(seed: 3)
        let records = (0..<500).map { _ in (weight: Double(1 + rng.next() % 10), time: 1_767_225_600_000.0 + Double(rng.next() % 20_000_000)) }
        let direct = AggregateTable(combining: decaySpec)
        let d = direct.entry(forTesting: "i")
        for r in records { direct.addDecayed(r.weight, at: r.time, count: 1, to: d) }
        // Three combiners over interleaved slices, their encoded partials merged downstream.
        let downstream = AggregateTable(combining: decaySpec)
        let m = downstream.entry(forTesting: "i")
        for slice in 0..<3 {
            let combiner = AggregateTable(combining: decaySpec)
            let c = combiner.entry(forTesting: "i")
            for (i, r) in records.enumerated() where i % 3 == slice { combiner.addDecayed(r.weight, at: r.time, count: 1, to: c) }
            combiner.forEachDirty { _, value in value.withUnsafeBytes { downstream.merge($0, into: m) } }
        }
        XCTAssertEqual(downstream.counts[m], 500)
        XCTAssertEqual(downstream.sum(1, of: m), direct.sum(1, of: d))
        XCTAssertEqual(downstream.sum(0, of: m), direct.sum(0, of: d), accuracy: direct.sum(0, of: d) * 1e-12)
        XCTAssertEqual(downstream.rank(of: m), direct.rank(of: d), accuracy: 1e-12)
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
