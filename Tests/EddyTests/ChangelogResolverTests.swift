@testable import EddyStreams
import XCTest

/// What a restore releases from a changelog whose broker delivers aborted records too.
final class ChangelogResolverTests: XCTestCase {
    private let a = CommitAttempt(life: 1, sequence: 1)
    private let b = CommitAttempt(life: 1, sequence: 2)
    private let zombie = CommitAttempt(life: 7, sequence: 1)

    /// Released records as "key=value@inputEnd".
    private var released: [String] = []

    private func collect(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, _ inputEnd: Int64) {
        released.append(String(decoding: key, as: UTF8.self) + "=" + String(decoding: value, as: UTF8.self) + "@\(inputEnd)")
    }

    private func add(_ resolver: inout ChangelogResolver, _ key: String, _ value: String, inputEnd: Int64, of attempt: CommitAttempt) {
        Array(key.utf8).withUnsafeBytes { k in
            Array(value.utf8).withUnsafeBytes { v in resolver.add(key: k, value: v, inputEnd: inputEnd, of: attempt, release: collect) }
        }
    }

    func testMarkedAttemptsAreReleasedInMarkerOrderAndUnmarkedOnesDropped() {
        var resolver = ChangelogResolver(usesMarkers: true)
        add(&resolver, "u1", "1", inputEnd: 10, of: a)
        add(&resolver, "user22", "333", inputEnd: 10, of: a)
        add(&resolver, "u1", "9", inputEnd: 12, of: zombie)  // aborted
        XCTAssertEqual(released.count, 0, "nothing is released before its marker")
        resolver.mark([a], release: collect)
        add(&resolver, "u1", "2", inputEnd: 20, of: b)
        resolver.mark([b], release: collect)
        add(&resolver, "u2", "5", inputEnd: 20, of: b)  // after its marker: released at once
        let resolved = resolver.finish(committedInputOffset: 20, release: collect)
        XCTAssertEqual(released, ["u1=1@10", "user22=333@10", "u1=2@20", "u2=5@20"])
        XCTAssertEqual(resolved, [])
        XCTAssertEqual(resolver.dropped, 1)
    }

    func testTheLastAttemptWithoutMarkerIsReleasedWhenTheGroupIsAtItsEnd() {
        var resolver = ChangelogResolver(usesMarkers: true)
        add(&resolver, "u1", "1", inputEnd: 10, of: a)
        resolver.mark([a], release: collect)
        // b committed, the process died before a later transaction carried b's marker.
        add(&resolver, "u1", "2", inputEnd: 20, of: b)
        let resolved = resolver.finish(committedInputOffset: 20, release: collect)
        XCTAssertEqual(released, ["u1=1@10", "u1=2@20"])
        XCTAssertEqual(resolved, [b], "a resolved attempt needs a marker of its own")
        XCTAssertEqual(resolver.dropped, 0)
    }

    func testAnUnmarkedAttemptThatEndsElsewhereThanTheGroupIsDropped() {
        var resolver = ChangelogResolver(usesMarkers: true)
        add(&resolver, "u1", "1", inputEnd: 10, of: a)
        add(&resolver, "u1", "2", inputEnd: 20, of: b)
        // The group committed 10 (a's commit returned but its marker was never written);
        // b aborted.
        let resolved = resolver.finish(committedInputOffset: 10, release: collect)
        XCTAssertEqual(released, ["u1=1@10"])
        XCTAssertEqual(resolved, [a])
        XCTAssertEqual(resolver.dropped, 1)
    }

    /// A source task's position is the sum of its two input offsets: an aborted attempt can
    /// end at the committed position having read the inputs in other proportions (here 3
    /// source records where the committed one read 1 and 2 re-keyed ones).
    func testAnAbortedAttemptAtTheCommittedPositionButAnotherSourceRepartitionOffsetIsDropped() {
        var resolver = ChangelogResolver(usesMarkers: true)
        Array("u1".utf8).withUnsafeBytes { k in
            Array("aborted".utf8).withUnsafeBytes { v in resolver.add(key: k, value: v, inputEnd: 153, rekeyedEnd: 50, of: a, release: collect) }
            Array("committed".utf8).withUnsafeBytes { v in resolver.add(key: k, value: v, inputEnd: 153, rekeyedEnd: 52, of: zombie, release: collect) }
        }
        let resolved = resolver.finish(committedInputOffset: 153, committedRekeyedOffset: 52, release: collect)
        XCTAssertEqual(released, ["u1=committed@153"])
        XCTAssertEqual(resolved, [zombie])
        XCTAssertEqual(resolver.dropped, 1)
    }

    func testAThroughMarkerReleasesItsLifesAttemptsButTheAbortedOnes() {
        var resolver = ChangelogResolver(usesMarkers: true)
        let c = CommitAttempt(life: 1, sequence: 3)
        add(&resolver, "u1", "1", inputEnd: 10, of: a)
        add(&resolver, "u1", "aborted", inputEnd: 20, of: b)
        add(&resolver, "u2", "3", inputEnd: 20, of: c)
        add(&resolver, "u9", "z", inputEnd: 20, of: zombie)
        resolver.mark(.through(life: 1, sequence: 3, aborted: [2...2]), release: collect)
        add(&resolver, "u3", "3", inputEnd: 20, of: c)  // after its marker: released at once
        XCTAssertEqual(resolver.finish(committedInputOffset: 30, release: collect), [])
        XCTAssertEqual(released, ["u1=1@10", "u2=3@20", "u3=3@20"])
        XCTAssertEqual(resolver.dropped, 2)
        let marking = InBandHeaders.Marking.through(life: 9, sequence: 40, aborted: [3...3, 17...21])
        XCTAssertEqual(InBandHeaders.decodeMarking(InBandHeaders.encode(marking)), marking)
        XCTAssertEqual(InBandHeaders.decodeMarking(InBandHeaders.encode(marking: [a, b])), .attempts([a, b]))
    }

    /// A changelog written as `StreamProducer` writes it — two lives, every seventh attempt
    /// aborted, `Marking.through` per life, the second life naming the first one's last
    /// attempt it resolved — compacted as Kafka does (aborted transactions' records gone,
    /// then the last record per key): the restore gives the committed state, and the
    /// compacted log keeps one marker per life (plus the resolved one), not one per commit.
    func testACompactedChangelogRestoresTheCommittedStateAndKeepsOneMarkerPerLife() throws {
        struct Entry { let key: String; let value: String; let attempt: CommitAttempt; let inputEnd: Int64; let marker: InBandHeaders.Marking?; let aborted: Bool }
        var log: [Entry] = []
        var committed: [String: String] = [:]
        var input: Int64 = 0
        var owedResolved: CommitAttempt?
        for life in [UInt64(1), 2] {
            var aborted: [ClosedRange<UInt64>] = []
            var owesOwn = false
            for seq in UInt64(1)...60 {
                let attempt = CommitAttempt(life: life, sequence: seq)
                let aborts = seq % 7 == 0 || (life == 1 && seq == 60)  // life 1 dies in its last attempt
                if owesOwn {
                    log.append(Entry(key: "eddy.marker.\(life)", value: "", attempt: attempt, inputEnd: 0,
                                     marker: .through(life: life, sequence: seq - 1, aborted: aborted), aborted: aborts))
                }
                if let r = owedResolved {
                    log.append(Entry(key: "eddy.marker.\(r.life).\(r.sequence)", value: "", attempt: attempt, inputEnd: 0, marker: .attempts([r]), aborted: aborts))
                }
                let end = input + 10
                for k in 0..<3 { log.append(Entry(key: "k\((Int(seq) * 3 + k) % 11)", value: "\(life).\(seq).\(k)", attempt: attempt, inputEnd: end, marker: nil, aborted: aborts)) }
                if aborts {
                    aborted.append(seq...seq)
                } else {
                    for k in 0..<3 { committed["k\((Int(seq) * 3 + k) % 11)"] = "\(life).\(seq).\(k)" }
                    input = end
                    owesOwn = true
                    owedResolved = nil
                }
                if life == 1 && seq == 59 { owesOwn = false }  // dies before marking 59: the next life resolves it
            }
            if life == 1 { owedResolved = CommitAttempt(life: 1, sequence: 59) }
        }
        func restore(_ entries: [Entry]) throws -> [String: String] {
            var state: [String: String] = [:]
            var resolver = ChangelogResolver(usesMarkers: true)
            let apply: ChangelogResolver.Release = { k, v, _ in state[String(decoding: k, as: UTF8.self)] = String(decoding: v, as: UTF8.self) }
            for e in entries {
                if let m = e.marker { try resolver.mark(m, release: apply); continue }
                try Array(e.key.utf8).withUnsafeBytes { k in try Array(e.value.utf8).withUnsafeBytes { v in try resolver.add(key: k, value: v, inputEnd: e.inputEnd, of: e.attempt, release: apply) } }
            }
            _ = try resolver.finish(committedInputOffset: input, release: apply)
            return state
        }
        XCTAssertEqual(try restore(log), committed, "the whole log, aborted records included (as Tansu delivers them)")
        var compacted: [Entry] = []
        var last: [String: Int] = [:]
        let live = log.filter { !$0.aborted }
        for (i, e) in live.enumerated() { last[e.key] = i }
        for (i, e) in live.enumerated() where last[e.key] == i { compacted.append(e) }
        XCTAssertEqual(try restore(compacted), committed, "compacted")
        XCTAssertEqual(compacted.filter { $0.marker != nil }.map(\.key).sorted(), ["eddy.marker.1", "eddy.marker.1.59", "eddy.marker.2"])
    }

    func testAtLeastOnceReleasesEveryRecordInOrder() {
        var resolver = ChangelogResolver(usesMarkers: false)
        add(&resolver, "u1", "1", inputEnd: 10, of: a)
        add(&resolver, "u1", "2", inputEnd: 20, of: zombie)
        XCTAssertEqual(resolver.finish(committedInputOffset: nil, release: collect), [])
        XCTAssertEqual(released, ["u1=1@10", "u1=2@20"])
    }

    func testHeadersRoundTripAndRejectWrongLengths() {
        let attempt = CommitAttempt(life: 0xDEAD_BEEF_0000_0001, sequence: 42)
        let header = InBandHeaders.encode(attempt, inputEnd: -1)
        XCTAssertEqual(header.count, 24)
        let decoded = InBandHeaders.decodeAttempt(header)
        XCTAssertEqual(decoded?.attempt, attempt)
        XCTAssertEqual(decoded?.inputEnd, -1)
        XCTAssertNil(InBandHeaders.decodeAttempt(Array(header.dropLast())))
        XCTAssertEqual(InBandHeaders.decodeMarker(InBandHeaders.encode(marking: [a, b, attempt])), [a, b, attempt])
        XCTAssertEqual(InBandHeaders.decodeMarker([]), [])
        XCTAssertNil(InBandHeaders.decodeMarker([1, 2, 3]))
    }
}
