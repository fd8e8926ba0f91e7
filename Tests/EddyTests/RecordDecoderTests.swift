@testable import EddyStreams
import XCTest

final class RecordDecoderTests: XCTestCase {
    private func decoder() throws -> RecordDecoder {
        let builder = StreamsBuilder(application: "t")
        builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["event_type"])
            .aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
            .toRedis(.init(kind: .hash, key: "u:{user_id}"))
        return RecordDecoder(try TopologyCompiler.compile(try builder.build()))
    }

    private func reason(_ json: String, maxBytes: Int? = nil) throws -> DeadLetterReason.Category? {
        let d = try decoder()
        do {
            try Array(json.utf8).withUnsafeBytes { try d.decode($0) }
            return nil
        } catch {
            return (error as! DeadLetterReason).category
        }
    }

    func testValidRecordPasses() throws {
        XCTAssertNil(try reason(#"{"user_id":"u1","event_type":"view","ts":1,"price":2.5}"#))
        XCTAssertNil(try reason(#"{"user_id":7,"event_type":"view","ts":1}"#), "numeric keys are fine")
    }

    func testEachKindOfBadRecordGetsItsReason() throws {
        XCTAssertEqual(try reason(#"{"user_id":"u1","#), .invalidJSON)
        XCTAssertEqual(try reason(#"{"event_type":"view","ts":1}"#), .missingField)
        XCTAssertEqual(try reason(#"{"user_id":null,"event_type":"view","ts":1}"#), .missingField)
        XCTAssertEqual(try reason(#"{"user_id":"","event_type":"view","ts":1}"#), .missingField)
        XCTAssertEqual(try reason(#"{"user_id":"u1","ts":1}"#), .missingField)
        XCTAssertEqual(try reason(#"{"user_id":"u1","event_type":"view","ts":"now"}"#), .wrongType)
        XCTAssertEqual(try reason(#"{"user_id":"u1","event_type":"view","ts":1,"price":"free"}"#), .wrongType)
        XCTAssertEqual(try reason(#"{"user_id":["u1"],"event_type":"view","ts":1}"#), .wrongType)
        XCTAssertEqual(try reason(#"{"user_id":"u1","event_type":"view","ts":1,"x":""# + "\u{FFFD}" + #""}"#), nil)
        let d = try decoder()
        let bad: [UInt8] = Array(#"{"user_id":"u1","event_type":"view","ts":1,"x":""#.utf8) + [0xFF] + Array(#""}"#.utf8)
        XCTAssertThrowsError(try bad.withUnsafeBytes { try d.decode($0) }) { XCTAssertEqual(($0 as! DeadLetterReason).category, .invalidUTF8) }
        let huge = #"{"user_id":"u1","event_type":"view","ts":1,"pad":""# + String(repeating: "x", count: 300_000) + #""}"#
        XCTAssertEqual(try reason(huge), .tooLarge)
    }

    func testImplausibleNumbersAreOutOfRange() throws {
        func ts(_ text: String) throws -> DeadLetterReason.Category? {
            try reason(#"{"user_id":"u1","event_type":"view","ts":"# + text + "}")
        }
        XCTAssertEqual(try ts("1e400"), .outOfRange, "not finite as a Double")
        XCTAssertEqual(try ts("-1e400"), .outOfRange)
        XCTAssertEqual(try ts("1767225600000000"), .outOfRange, "microseconds")
        XCTAssertEqual(try ts("1767225600000000000"), .outOfRange, "nanoseconds")
        XCTAssertEqual(try ts("99999999999999999999999"), .outOfRange, "beyond Int64")
        XCTAssertEqual(try ts("-1"), .outOfRange)
        XCTAssertEqual(try ts("253402300800000"), .outOfRange, "10000-01-01T00:00:00Z")
        // The bounds themselves, and ordinary times, pass.
        XCTAssertNil(try ts("0"))
        XCTAssertNil(try ts("253402300799999"))
        XCTAssertNil(try ts("1767225600000"))
        XCTAssertNil(try ts("1.7672256e12"))
        // A summed field that is not finite would make its sum infinite for good.
        XCTAssertEqual(try reason(#"{"user_id":"u1","event_type":"view","ts":1,"price":1e400}"#), .outOfRange)
        XCTAssertEqual(try reason(#"{"user_id":"u1","event_type":"view","ts":1,"price":-1e309}"#), .outOfRange)
        XCTAssertNil(try reason(#"{"user_id":"u1","event_type":"view","ts":1,"price":1e308}"#))
        // The bound is the one an independent calendar gives for the end of year 9999.
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let end = utc.date(from: DateComponents(year: 10_000, month: 1, day: 1))!
        XCTAssertEqual(RecordDecoder.latestEventTimeMs + 1, end.timeIntervalSince1970 * 1000)
    }
}
