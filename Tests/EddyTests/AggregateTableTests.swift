import EddyState
@testable import EddyStreams
import Foundation
import XCTest

/// The write-back cache over a real RocksDB in a temporary directory.
final class AggregateTableTests: XCTestCase {
    private var dir: URL!

    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-agg-\(UUID().uuidString.prefix(8))")
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    private let spec = CompiledTopology.Aggregate(index: 0, name: "per_user", groupFields: [0, 1], sumFields: [2], sinks: [])

    private func key(_ parts: String...) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts { Array(p.utf8).withUnsafeBufferPointer { appendLengthPrefixed($0, to: &out) } }
        return out
    }

    func testCommittedValuesSurviveReopenAndEviction() throws {
        do {
            let db = try StateDatabase(path: dir.path, memoryBudgetBytes: 16 << 20)
            let table = AggregateTable(spec: spec, columnFamily: try db.columnFamily("agg.per_user.0"), database: db)
            for i in 0..<1_000 {
                let e = try table.entry(for: key("u\(i % 10)", "view"))
                table.add(count: 1, to: e)
                table.add(FixedPointSum(0.1, fractionBits: SumsFunction.fractionBits), fixed: 0, to: e)
            }
            XCTAssertEqual(table.dirty.count, 10)
            let batch = StateWriteBatch()
            table.writeDirty(to: batch)
            try db.write(batch)
            table.markClean()
            XCTAssertTrue(table.dirty.isEmpty)
            table.evictClean()
            XCTAssertEqual(table.entryCount, 0)
            // After eviction, a miss reads RocksDB.
            let e = try table.entry(for: key("u3", "view"))
            XCTAssertEqual(table.counts[e], 100)
            db.close()
        }
        let db = try StateDatabase(path: dir.path, memoryBudgetBytes: 16 << 20)
        let table = AggregateTable(spec: spec, columnFamily: try db.columnFamily("agg.per_user.0"), database: db)
        let e = try table.entry(for: key("u7", "view"))
        XCTAssertEqual(table.counts[e], 100)
        // Exact: 100 × 0.1 (0.1000000000000000055… as a double) is 10.00000000000000055…,
        // which rounds to 10; adding the doubles gives 9.99999999999998.
        XCTAssertEqual(table.fixed(0, of: e).double(fractionBits: SumsFunction.fractionBits), 10)
        var group: [UInt8] = []
        table.groupValue(1, of: e, into: &group)
        XCTAssertEqual(String(decoding: group, as: UTF8.self), "view")
    }

    func testUncommittedChangesAreNotPersisted() throws {
        do {
            let db = try StateDatabase(path: dir.path, memoryBudgetBytes: 16 << 20)
            let table = AggregateTable(spec: spec, columnFamily: try db.columnFamily("agg.per_user.0"), database: db)
            table.add(count: 5, to: try table.entry(for: key("u1", "view")))
            db.close()
        }
        let db = try StateDatabase(path: dir.path, memoryBudgetBytes: 16 << 20)
        XCTAssertTrue(db.isEmpty(try db.columnFamily("agg.per_user.0")))
    }
}
