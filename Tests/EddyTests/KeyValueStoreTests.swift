import EddyState
@testable import EddyStreams
import Foundation
import XCTest

/// The changelogged key-value store and the task timers over a real RocksDB, checked
/// against plain dictionaries and sorted lists written in the tests.
final class KeyValueStoreTests: TemporaryDatabaseTestCase {

    private func store(_ name: String = "s") throws -> KeyValueStore {
        KeyValueStore(name: name, columnFamily: try db.columnFamily("kv.\(name).0"), database: db)
    }

    /// What a commit does with a store: its changes, then the RocksDB batch.
    private func commit(_ store: KeyValueStore) throws -> [([UInt8], [UInt8]?)] {
        var changes: [([UInt8], [UInt8]?)] = []
        store.forEachChange { changes.append(($0, $1)) }
        let batch = StateWriteBatch()
        store.writeChanges(to: batch)
        try db.write(batch)
        store.markClean()
        return changes
    }

    private func k(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testDeletesAreTombstonesAndTheLastValuePerKeyIsSentOnce() throws {
        let s = try store()
        s.put(k("a"), k("1"))
        s.put(k("a"), k("2"))
        s.put(k("b"), k("1"))
        _ = try commit(s)
        s.delete(k("b"))
        s.put(k("c"), k("3"))
        s.delete(k("c"))
        let changes = try commit(s)
        XCTAssertEqual(changes.map { String(decoding: $0.0, as: UTF8.self) }.sorted(), ["b", "c"])
        XCTAssertTrue(changes.allSatisfy { $0.1 == nil }, "deletes go to the changelog as null values, not empty ones")
        XCTAssertNil(try s.get(k("b")))
        XCTAssertNil(try db.get(s.columnFamily!, key: k("b")), "the delete reached RocksDB")
        XCTAssertEqual(try db.get(s.columnFamily!, key: k("a")), k("2"))
    }

    func testRangeScansMergeTheCacheOverRocksDBInKeyOrder() throws {
        var reference: [String: String] = [:]
        var rng = SystemRandomNumberGenerator()
        var s = try store()
        for round in 0..<4 {
            for _ in 0..<300 {
                let key = "k\(Int.random(in: 0..<200, using: &rng))"
                if Bool.random(using: &rng) {
                    s.put(k(key), k("v\(round)"))
                    reference[key] = "v\(round)"
                } else {
                    s.delete(k(key))
                    reference[key] = nil
                }
            }
            _ = try commit(s)
            if round == 1 { s.evictClean() }        // later reads come from RocksDB
            if round == 2 { s = try store() }       // a reopened store: nothing cached
            for _ in 0..<20 { s.put(k("k\(Int.random(in: 0..<200, using: &rng))x"), k("uncommitted")) }
            for (key, _) in s.range(from: k("k"), to: nil) where String(decoding: key, as: UTF8.self).hasSuffix("x") { s.delete(key) }
            let from = "k1", to = "k5"
            let expected = reference.filter { $0.key >= from && $0.key < to }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            let actual = s.range(from: k(from), to: k(to)).map { "\(String(decoding: $0.key, as: UTF8.self))=\(String(decoding: $0.value, as: UTF8.self))" }
            XCTAssertEqual(actual, expected, "round \(round)")
        }
    }

    func testTimersFireInTimeNodeKeyOrderOnlyOnceStreamTimePassesThemAndSurviveAReopen() throws {
        var timers = TaskTimers(store: try store("timers"))
        timers.schedule(node: 1, key: k("b"), at: 100)
        timers.schedule(node: 1, key: k("a"), at: 100)
        timers.schedule(node: 0, key: k("z"), at: 100)
        timers.schedule(node: 0, key: k("late"), at: 300)
        timers.schedule(node: 0, key: k("gone"), at: 50)
        timers.cancel(node: 0, key: k("gone"), at: 50)
        XCTAssertNil(timers.popDue(at: 100), "stream time must pass a timer, not reach it")
        timers.prepareCommit(streamTime: 100)
        _ = try commit(timers.store)
        timers = TaskTimers(store: try store("timers"))
        XCTAssertEqual(timers.storedStreamTime, 100)
        XCTAssertEqual(timers.pendingCount, 4)
        var fired: [String] = []
        while let t = timers.popDue(at: 101) { fired.append("\(t.time):\(t.node):\(String(decoding: t.key, as: UTF8.self))") }
        XCTAssertEqual(fired, ["100:0:z", "100:1:a", "100:1:b"])
        timers.prepareCommit(streamTime: 101)
        _ = try commit(timers.store)
        XCTAssertEqual(TaskTimers(store: try store("timers")).pendingCount, 1, "fired timers left the store")
    }
}
