import EddyState
@testable import EddyStreams
import Foundation
import XCTest

/// Which upstream partials reach a repartitioned store, over a real RocksDB: committed ones
/// exactly once, aborted ones never, whatever order markers and resolutions arrive in.
final class RepartitionIntakeTests: TemporaryDatabaseTestCase {
    private let spec = CompiledTopology.Aggregate(index: 0, name: "per_item", groupFields: [0], sumFields: [], repartitionTopic: "t", sinks: [])

    /// What the intake releases merges into the aggregate's table, as a repartition task's
    /// first node does.
    private final class Table: RepartitionTarget {
        let table: AggregateTable
        init(_ table: AggregateTable) { self.table = table }

        /// The watermark each time the intake said an upstream's stream time advanced.
        var watermarks: [Int64] = []
        weak var intake: RepartitionIntake?

        func deliver(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
            table.merge(value, into: try table.entry(for: Array(key)))
        }

        func upstreamTimeAdvanced() throws {
            watermarks.append(intake!.watermark)
        }
    }

    private var target: Table!

    private func makeIntake(usesMarkers: Bool = true, chunkBytes: Int = 64 << 10) throws -> RepartitionIntake {
        target = Table(AggregateTable(spec: spec, columnFamily: try db.columnFamily("agg.per_item.0"), database: db))
        let store = KeyValueStore(name: "per_item-intake", columnFamily: try db.columnFamily("intake.per_item.0"), database: db)
        let intake = RepartitionIntake(store: store, usesMarkers: usesMarkers, upstreams: 2, chunkBytes: chunkBytes)
        target.intake = intake
        intake.load()
        return intake
    }

    private func key(_ item: String) -> [UInt8] {
        var out: [UInt8] = []
        Array(item.utf8).withUnsafeBufferPointer { appendLengthPrefixed($0, to: &out) }
        return out
    }

    /// Sends `count` events of `item` as one partial of attempt (life, seq) from `upstream`,
    /// its task at `streamTime`.
    private func send(_ intake: RepartitionIntake, life: UInt64, seq: UInt64, start: Int64, end: Int64, item: String? = "i1", count: Int64 = 1,
                      upstream: Int32 = 0, streamTime: Int64 = 0, rekeyedEnd: Int64 = 0) throws {
        let partial = InBandHeaders.Partial(attempt: CommitAttempt(life: life, sequence: seq), upstream: upstream, start: start, end: end,
                                            streamTime: streamTime, rekeyedEnd: rekeyedEnd)
        let value = withUnsafeBytes(of: count.littleEndian, Array.init)
        if let item {
            try key(item).withUnsafeBytes { k in try value.withUnsafeBytes { try intake.add(partial, key: k, value: $0, into: target) } }
        } else {
            try intake.add(partial, key: nil, value: UnsafeRawBufferPointer(start: nil, count: 0), into: target)
        }
    }

    private func count(_ intake: RepartitionIntake, _ item: String = "i1") throws -> Int64 {
        let e = try target.table.entry(for: key(item))
        return target.table.counts[e]
    }

    /// Commits; returns the size of each value the commit sends to the changelog.
    @discardableResult
    private func commit(_ intake: RepartitionIntake) throws -> [Int] {
        let batch = StateWriteBatch()
        intake.prepareCommit()
        var sent: [Int] = []
        intake.store!.forEachChange { _, value in if let value { sent.append(value.count) } }
        intake.store!.writeChanges(to: batch)
        target.table.writeDirty(to: batch)
        try db.write(batch)
        intake.store!.markClean()
        target.table.markClean()
        return sent
    }

    func testMarkedAttemptsApplyOnceAndAMarkerDropsTheLifesOlderUnmarkedAttempts() throws {
        let intake = try makeIntake()
        try send(intake, life: 1, seq: 1, start: 0, end: 10, count: 3)  // aborted
        try send(intake, life: 1, seq: 2, start: 0, end: 12, count: 4)  // its retry, committed
        XCTAssertEqual(try count(intake), 0, "nothing applies before a marker")
        try intake.release(CommitAttempt(life: 1, sequence: 2), into: target)
        XCTAssertEqual(try count(intake), 4)
        XCTAssertTrue(intake.isSettled, "the aborted attempt is dropped, not kept")
        try intake.release(CommitAttempt(life: 1, sequence: 2), into: target)  // a marker seen twice
        XCTAssertEqual(try count(intake), 4)
    }

    func testResolutionAppliesTheLastCommittedAttemptNotAnAbortedOneEndingAtTheSameOffset() throws {
        let intake = try makeIntake()
        // Life 1 processed 0..<100 and died before committing (aborted, but delivered).
        try send(intake, life: 1, seq: 1, start: 0, end: 100, count: 100)
        // Life 2 committed 0..<60 (marked) and 60..<100, then died before its marker.
        try send(intake, life: 2, seq: 1, start: 0, end: 60, count: 60)
        try send(intake, life: 2, seq: 2, start: 60, end: 100, count: 40)
        try intake.release(CommitAttempt(life: 2, sequence: 1), into: target)
        // Life 3 found the group at 100.
        try intake.resolve(upstream: 0, committed: 100, into: target)
        XCTAssertEqual(try count(intake), 100)
        XCTAssertTrue(intake.isSettled)
    }

    /// A source task's position is the sum of its two input offsets: two attempts can end at
    /// the same position having read different records; the resolution names both offsets.
    func testResolutionTellsApartAttemptsEndingAtTheSamePositionWithOtherSourceRepartitionOffsets() throws {
        let intake = try makeIntake()
        try send(intake, life: 1, seq: 1, start: 150, end: 153, count: 3, rekeyedEnd: 50)  // aborted: 3 source records
        try send(intake, life: 2, seq: 1, start: 150, end: 153, count: 7, rekeyedEnd: 52)  // committed: 1 source, 2 re-keyed
        try intake.resolve(upstream: 0, committed: 153, rekeyedCommitted: 52, into: target)
        XCTAssertEqual(try count(intake), 7)
        XCTAssertTrue(intake.isSettled)
        try commit(intake)
        XCTAssertEqual(InBandHeaders.decodePartial(InBandHeaders.encode(InBandHeaders.Partial(
            attempt: CommitAttempt(life: 1, sequence: 2), upstream: 3, start: 4, end: 5, streamTime: 6, rekeyedEnd: 7)))?.rekeyedEnd, 7)
        XCTAssertEqual(InBandHeaders.decodeResolution(InBandHeaders.encodeResolution(upstream: 1, committed: 9, rekeyedCommitted: 4))?.rekeyedCommitted, 4)
    }

    func testResolutionWithNothingAppliedTakesTheEarliestStartAndIdenticalRetriesOnce() throws {
        let intake = try makeIntake()
        try send(intake, life: 1, seq: 1, start: 0, end: 50, count: 50)  // aborted
        try send(intake, life: 1, seq: 2, start: 0, end: 50, count: 50)  // same range, committed
        try intake.resolve(upstream: 0, committed: 50, into: target)
        XCTAssertEqual(try count(intake), 50)
        // Nothing committed at all: every pending attempt is dropped.
        try send(intake, life: 4, seq: 1, start: 50, end: 70, count: 20)
        try intake.resolve(upstream: 0, committed: -1, into: target)
        XCTAssertEqual(try count(intake), 50)
        XCTAssertTrue(intake.isSettled)
    }

    func testRangesTheChainIsPastAreIgnoredAndEmptyPartialsAdvanceIt() throws {
        let intake = try makeIntake()
        try send(intake, life: 1, seq: 1, start: 0, end: 30, item: nil)  // no record for this partition
        try intake.release(CommitAttempt(life: 1, sequence: 1), into: target)
        try send(intake, life: 1, seq: 2, start: 30, end: 40, count: 2)
        try intake.resolve(upstream: 0, committed: 40, into: target)
        XCTAssertEqual(try count(intake), 2)
        try send(intake, life: 9, seq: 1, start: 0, end: 40, count: 40)  // a stale copy
        XCTAssertTrue(intake.isSettled)
    }

    func testPendingAttemptsAndTheChainSurviveAReopen() throws {
        do {
            let intake = try makeIntake()
            try send(intake, life: 1, seq: 1, start: 0, end: 10, count: 10)
            try intake.release(CommitAttempt(life: 1, sequence: 1), into: target)
            try send(intake, life: 1, seq: 2, start: 10, end: 25, count: 15)
            try commit(intake)
        }
        let reopened = try makeIntake()
        XCTAssertFalse(reopened.isSettled, "the unmarked attempt is still pending")
        XCTAssertEqual(try count(reopened), 10)
        try reopened.resolve(upstream: 0, committed: 25, into: target)
        XCTAssertEqual(try count(reopened), 25)
        try commit(reopened)
        let again = try makeIntake()
        XCTAssertTrue(again.isSettled, "the released attempt was deleted from the store")
        XCTAssertEqual(try count(again), 25)
    }

    func testWatermarkIsTheSlowestUpstreamOverAppliedAttemptsOnly() throws {
        let intake = try makeIntake()
        try send(intake, life: 1, seq: 1, start: 0, end: 10, upstream: 0, streamTime: 500)
        try intake.release(CommitAttempt(life: 1, sequence: 1), into: target)
        XCTAssertEqual(intake.watermark, .min, "upstream 1 has sent nothing: a session it could still extend must stay open")
        try send(intake, life: 2, seq: 1, start: 0, end: 10, upstream: 1, streamTime: 300)
        XCTAssertEqual(intake.watermark, .min, "a pending attempt may have aborted: its time does not count")
        try send(intake, life: 2, seq: 2, start: 0, end: 12, upstream: 1, streamTime: 900)  // aborted: a marker for seq 3 drops it
        try send(intake, life: 2, seq: 3, start: 0, end: 12, upstream: 1, streamTime: 400)
        try intake.release(CommitAttempt(life: 2, sequence: 3), into: target)
        XCTAssertEqual(intake.watermark, 400)
        try commit(intake)
        XCTAssertEqual(try makeIntake().watermark, 400, "the upstream times are state: a restored task resumes with them")
    }

    func testAtLeastOnceCountsAnAttemptsTimeOnlyOnceTheUpstreamsNextAttemptStarts() throws {
        let intake = try makeIntake(usesMarkers: false)
        try send(intake, life: 1, seq: 1, start: 0, end: 10, upstream: 0, streamTime: 100)
        try send(intake, life: 1, seq: 1, start: 0, end: 10, upstream: 1, streamTime: 200)
        XCTAssertEqual(intake.watermark, .min, "more of either attempt's records may follow")
        try send(intake, life: 1, seq: 2, start: 10, end: 20, upstream: 0, streamTime: 300)
        try send(intake, life: 1, seq: 2, start: 10, end: 20, upstream: 1, streamTime: 250)
        XCTAssertEqual(intake.watermark, 100)
        XCTAssertEqual(target.watermarks, [.min, 100])
        try intake.attemptsComplete(into: target)
        XCTAssertEqual(intake.watermark, 250)
        XCTAssertEqual(try count(intake), 4, "every record counts at once")
    }

    /// recs.yaml's model over 200k events: one upstream commit sent its single partition
    /// more records than the producer queue holds, in one changelog value that never fit.
    func testALargePendingAttemptGoesToTheChangelogInBoundedChunksEachSentOnceComplete() throws {
        let recordBytes = 4 + 6 + 4 + 8  // length-prefixed key "i1", length-prefixed 8-byte count
        let intake = try makeIntake(chunkBytes: 100)
        var sent: [Int] = []
        for records in [20, 20, 10] {  // one attempt read across three commits
            for _ in 0..<records { try send(intake, life: 1, seq: 1, start: 0, end: 50) }
            sent += try commit(intake)
        }
        XCTAssertEqual(sent.max(), 100, "no changelog value is larger than a chunk")
        // Each commit sends its new records plus, at most, the chunk they completed again.
        XCTAssertLessThanOrEqual(sent.reduce(0, +), 32 + 50 * recordBytes + 3 * 100)
        let reopened = try makeIntake(chunkBytes: 100)
        XCTAssertEqual(try count(reopened), 0)
        try reopened.resolve(upstream: 0, committed: 50, into: target)
        XCTAssertEqual(try count(reopened), 50, "the chunks read back are the attempt's records, in order")
        try commit(reopened)
        let stored = try makeIntake(chunkBytes: 100).store!.range(from: IntakeKeys.prefix, to: nil)
        XCTAssertEqual(stored.count, 1, "the applied attempt's header and chunks are deleted; its upstream's position stays")
    }

    /// An attempt of 30 records of "i1", stored whole in its key's value, as Eddy did
    /// before chunks.
    private func storeWholeAttempt() throws {
        let intake = try makeIntake()
        var whole = encodeOffset(0) + encodeOffset(30) + encodeOffset(7) + encodeOffset(0)
        let value = withUnsafeBytes(of: Int64(1).littleEndian, Array.init)
        for _ in 0..<30 {
            key("i1").withUnsafeBufferPointer { appendLengthPrefixed($0, to: &whole) }
            value.withUnsafeBufferPointer { appendLengthPrefixed($0, to: &whole) }
        }
        intake.store!.put(IntakeKeys.pending(CommitAttempt(life: 1, sequence: 1), 0), whole)
        try commit(intake)
    }

    func testAPendingAttemptStoredWholeByAnOlderEddyAndSettledBeforeACommitLeavesTheStore() throws {
        try storeWholeAttempt()
        let intake = try makeIntake(chunkBytes: 100)
        try intake.resolve(upstream: 0, committed: 30, into: target)
        XCTAssertEqual(try count(intake), 30)
        try commit(intake)
        XCTAssertEqual(try makeIntake().store!.range(from: IntakeKeys.prefix, to: nil).count, 1, "only the upstream's position is left")
    }

    func testAPendingAttemptStoredWholeByAnOlderEddyIsReadAndStoredAgainInChunks() throws {
        try storeWholeAttempt()
        let intake = try makeIntake(chunkBytes: 100)
        XCTAssertFalse(intake.isSettled)
        XCTAssertEqual(try commit(intake).sorted(), [32, 60, 100, 100, 100, 100, 100, 100], "the header alone, then the records in chunks")
        let reopened = try makeIntake(chunkBytes: 100)
        try reopened.resolve(upstream: 0, committed: 30, into: target)
        XCTAssertEqual(try count(reopened), 30)
    }
}
