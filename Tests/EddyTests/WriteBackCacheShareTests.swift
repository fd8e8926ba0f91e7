import EddyKafka
import EddyState
@testable import EddyStreams
import Foundation
import XCTest

/// The write-back cache's part of `state.memory_mb`: a thread's tables over their byte share
/// force a commit and lose their clean entries at it; RocksDB still serves them.
final class WriteBackCacheShareTests: TemporaryDatabaseTestCase {

    /// The 20 most recent items per user, as item-popularity keeps them.
    private let spec = CompiledTopology.Aggregate(index: 0, name: "recently_viewed", groupFields: [0], function: .recent(field: 1, size: 20))

    private func key(_ user: Int) -> [UInt8] {
        var out: [UInt8] = []
        Array("u\(user)".utf8).withUnsafeBufferPointer { appendLengthPrefixed($0, to: &out) }
        return out
    }

    private func view(_ table: AggregateTable, _ user: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        let e = try table.entry(for: key(user))
        table.recent[e].appendJSON(to: &out)
        return out
    }

    /// What a commit does to the tables, in the stream thread's order.
    private func commit(_ tasks: [TopicPartition: StreamTask], _ share: WriteBackCacheShare) throws {
        share.evictIfOver(tasks.values)
        let batch = StateWriteBatch()
        for task in tasks.values {
            for (store, _) in task.stores {
                store.writeChanges(to: batch)
                store.markClean()
            }
        }
        try db.write(batch)
    }

    func testTablesOverTheirShareForceCommitsAndLoseCleanEntries() throws {
        let table = AggregateTable(spec: spec, columnFamily: try db.columnFamily("agg.recently_viewed.0"), database: db)
        let tp = TopicPartition("clicks", 0)
        let tasks = [tp: try StreamTask(partition: tp, storing: table)]
        let share = WriteBackCacheShare(bytes: 256 << 10, maxEntries: 1_000_000, metrics: StreamsMetrics())
        // 20,000 users, each 5 items (~600 bytes an entry by the table's estimate: ~12 MB in
        // all), in batches of 100 records; a commit whenever the share says it is full.
        var commits = 0, peak = 0
        for round in 0..<5 {
            for batchStart in stride(from: 0, to: 20_000, by: 100) {
                for user in batchStart..<(batchStart + 100) {
                    Array("i\(user * 7 + round)".utf8).withUnsafeBufferPointer {
                        table.addRecent($0, at: Int64(round), to: try! table.entry(for: key(user)))
                    }
                }
                peak = max(peak, table.bytes)
                if share.isFull(tasks.values) {
                    try commit(tasks, share)
                    commits += 1
                }
            }
        }
        try commit(tasks, share)
        // ~12 MB through a 256 KB share: about one commit per 256 KB of new entries.
        XCTAssertGreaterThan(commits, 5 * 12 * 4 / 2)
        XCTAssertLessThan(peak, 2 * share.bytes, "one batch past the share at most")
        XCTAssertLessThan(table.entryCount, 20_000)
        // Evicted users come back from RocksDB with all their items.
        XCTAssertEqual(String(decoding: try view(table, 3), as: UTF8.self), #"["i25","i24","i23","i22","i21"]"#)
    }

    func testEntryLimitStillCaps() throws {
        let table = AggregateTable(spec: spec, columnFamily: try db.columnFamily("agg.recently_viewed.0"), database: db)
        let tp = TopicPartition("clicks", 0)
        let tasks = [tp: try StreamTask(partition: tp, storing: table)]
        let share = WriteBackCacheShare(bytes: 1 << 30, maxEntries: 100, metrics: StreamsMetrics())
        for user in 0..<99 { _ = try table.entry(for: key(user)) }
        XCTAssertFalse(share.isFull(tasks.values))
        _ = try table.entry(for: key(99))
        XCTAssertTrue(share.isFull(tasks.values))
        try commit(tasks, share)  // nothing is clean yet: all 100 stay, then are committed
        _ = try table.entry(for: key(5))
        try commit(tasks, share)  // now the 99 clean ones go
        XCTAssertEqual(table.entryCount, 1)
    }

    /// `AggregateTable.bytes` against what the process grows by for the same entries (its
    /// resident set: enough entries that malloc's own overhead is noise next to them).
    func testByteEstimateFollowsTheProcess() throws {
        let table = AggregateTable(spec: spec, columnFamily: try db.columnFamily("agg.recently_viewed.0"), database: db)
        // What earlier tests of this process freed is still resident: malloc would reuse it
        // without the process growing (the whole suite in one process saw 97 MB of growth for
        // 156 MB of entries; 2M freed 64-byte arrays before this test: 0 MB). Handed back
        // first, every page of the entries is new.
        HeapTrim.trim()
        let before = try residentBytes()
        for user in 0..<300_000 {
            let e = try table.entry(for: key(user))
            for i in 0..<(user % 30) {
                Array("item-\(i)".utf8).withUnsafeBufferPointer { table.addRecent($0, at: Int64(i), to: e) }
            }
        }
        let grown = try residentBytes() - before
        let ratio = Double(table.bytes) / Double(grown)
        XCTAssert(ratio > 0.75 && ratio < 1.33, "estimate \(table.bytes >> 20) MB, the process grew by \(grown >> 20) MB")
    }

    private func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }!
        return Int(line.split(separator: " ")[1])! << 10
    }
}

extension StreamTask {
    /// A source task whose only store is `table`.
    convenience init(partition: TopicPartition, storing table: AggregateTable) throws {
        let topology = try TopologyCompiler.compile(Topology(
            application: "app", source: .init(topic: partition.topic, keyField: "user_id", timestampField: "ts"),
            nodes: [.init(name: table.spec.name, input: nil, operation: .recent(groupBy: ["user_id"], field: "item_id", size: 20))]))
        let changelog = InternalPartition(store: 0, topic: "app-\(table.spec.name)-changelog", partition: partition.partition)
        self.init(partition: partition, operators: [], roots: [], outputs: [], stores: [(table, changelog)], intake: nil, rekey: nil, timers: nil, topology: topology,
                  deadLetters: DeadLetterQueue(topic: "app-dlq"), metrics: StreamsMetrics(), nextOffset: 0, committedOffset: nil)
    }
}
