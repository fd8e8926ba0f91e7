@testable import EddyStreams
import XCTest

/// What a restore releases from a changelog whose broker delivers aborted records too.
final class ChangelogResolverTests: XCTestCase {
    private let a = CommitAttempt(life: 1, sequence: 1)
    private let b = CommitAttempt(life: 1, sequence: 2)
    private let zombie = CommitAttempt(life: 7, sequence: 1)

    private func record(_ key: String, _ value: String, inputEnd: Int64) -> ChangelogResolver.Record {
        .init(key: Array(key.utf8), value: Array(value.utf8), inputEnd: inputEnd)
    }

    private func values(_ released: [ChangelogResolver.Record]) -> [String] {
        released.map { String(decoding: $0.key, as: UTF8.self) + "=" + String(decoding: $0.value, as: UTF8.self) }
    }

    func testMarkedAttemptsAreReleasedInMarkerOrderAndUnmarkedOnesDropped() {
        var resolver = ChangelogResolver(usesMarkers: true)
        var released: [ChangelogResolver.Record] = []
        resolver.add(record("u1", "1", inputEnd: 10), of: a) { released.append($0) }
        resolver.add(record("u1", "9", inputEnd: 12), of: zombie) { released.append($0) }  // aborted
        XCTAssertEqual(released.count, 0, "nothing is released before its marker")
        resolver.mark([a]) { released.append($0) }
        resolver.add(record("u1", "2", inputEnd: 20), of: b) { released.append($0) }
        resolver.mark([b]) { released.append($0) }
        resolver.add(record("u2", "5", inputEnd: 20), of: b) { released.append($0) }  // after its marker: released at once
        let resolved = resolver.finish(committedInputOffset: 20) { released.append($0) }
        XCTAssertEqual(values(released), ["u1=1", "u1=2", "u2=5"])
        XCTAssertEqual(resolved, [])
        XCTAssertEqual(resolver.dropped, 1)
    }

    func testTheLastAttemptWithoutMarkerIsReleasedWhenTheGroupIsAtItsEnd() {
        var resolver = ChangelogResolver(usesMarkers: true)
        var released: [ChangelogResolver.Record] = []
        resolver.add(record("u1", "1", inputEnd: 10), of: a) { released.append($0) }
        resolver.mark([a]) { released.append($0) }
        // b committed, the process died before a later transaction carried b's marker.
        resolver.add(record("u1", "2", inputEnd: 20), of: b) { released.append($0) }
        let resolved = resolver.finish(committedInputOffset: 20) { released.append($0) }
        XCTAssertEqual(values(released), ["u1=1", "u1=2"])
        XCTAssertEqual(resolved, [b], "a resolved attempt needs a marker of its own")
        XCTAssertEqual(resolver.dropped, 0)
    }

    func testAnUnmarkedAttemptThatEndsElsewhereThanTheGroupIsDropped() {
        var resolver = ChangelogResolver(usesMarkers: true)
        var released: [ChangelogResolver.Record] = []
        resolver.add(record("u1", "1", inputEnd: 10), of: a) { released.append($0) }
        resolver.add(record("u1", "2", inputEnd: 20), of: b) { released.append($0) }
        // The group committed 10 (a's commit returned but its marker was never written);
        // b aborted.
        let resolved = resolver.finish(committedInputOffset: 10) { released.append($0) }
        XCTAssertEqual(values(released), ["u1=1"])
        XCTAssertEqual(resolved, [a])
        XCTAssertEqual(resolver.dropped, 1)
    }

    func testAtLeastOnceReleasesEveryRecordInOrder() {
        var resolver = ChangelogResolver(usesMarkers: false)
        var released: [ChangelogResolver.Record] = []
        resolver.add(record("u1", "1", inputEnd: 10), of: a) { released.append($0) }
        resolver.add(record("u1", "2", inputEnd: 20), of: zombie) { released.append($0) }
        XCTAssertEqual(resolver.finish(committedInputOffset: nil) { released.append($0) }, [])
        XCTAssertEqual(values(released), ["u1=1", "u1=2"])
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
