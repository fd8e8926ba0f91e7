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
