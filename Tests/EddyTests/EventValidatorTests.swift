import EddyStreams
import XCTest

/// Ingest refuses exactly what the stream thread would dead-letter, for the same reason:
/// each event is checked both ways, through `EventValidator` and through the topology test
/// driver's dead-letter path.
final class EventValidatorTests: XCTestCase {
    private func topology(maxValueBytes: Int = 256 * 1024) throws -> Topology {
        let builder = StreamsBuilder(application: "ingest")
        builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["event_type"], maxValueBytes: maxValueBytes)
            .aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
            .toRedis(.init(kind: .hash, key: "u:{user_id}"))
        return try builder.build()
    }

    func testRefusesWhatTheDeadLetterPathRefusesForTheSameReason() throws {
        let events = [
            #"{"user_id":"u1","event_type":"view","ts":1,"price":2.5}"#,
            #"{"user_id":"u1","#,
            #"{"event_type":"view","ts":1}"#,
            #"{"user_id":"","event_type":"view","ts":1}"#,
            #"{"user_id":{"a":1},"event_type":"view","ts":1}"#,
            #"{"user_id":"u1","event_type":"view","ts":"yesterday"}"#,
            #"{"user_id":"u1","event_type":"view","ts":1.7e18}"#,
            #"{"user_id":"u1","event_type":"view","ts":1,"price":"free"}"#,
            #"{"user_id":"u1","event_type":"view","ts":1,"price":1e400}"#,
            #"[1,2]"#,
            #"{"user_id":"u1","event_type":"view","ts":1,"price":"#,
            "{\"user_id\":\"u\u{1}\",\"event_type\":\"view\",\"ts\":1}",
            #"{"user_id":"u1","event_type":"view","ts":1,"note":""# + String(repeating: "x", count: 300) + #""}"#,
        ]
        let topology = try topology(maxValueBytes: 200)
        let validator = try EventValidator(topology: topology)
        let driver = try TopologyTestDriver(topology)
        for event in events {
            let viaIngest: String?
            switch validator.validate(Array(event.utf8)) {
            case .success: viaIngest = nil
            case .failure(let rejected): viaIngest = rejected.reason
            }
            let before = driver.deadLetters.count
            try driver.pipe(event)
            let viaStream = driver.deadLetters.count > before ? driver.deadLetters.last!.reason : nil
            XCTAssertEqual(viaIngest, viaStream, event)
        }
        XCTAssertGreaterThan(driver.deadLetters.count, 8, "the events must exercise the dead-letter path")
    }

    func testInvalidUTF8IsRefused() throws {
        let validator = try EventValidator(topology: try topology())
        let bytes = Array(#"{"user_id":"u"#.utf8) + [0xC3, 0x28] + Array(#"","event_type":"view","ts":1}"#.utf8)
        guard case .failure(let rejected) = validator.validate(bytes) else { return XCTFail("accepted invalid UTF-8") }
        XCTAssertEqual(rejected.reason, "invalid_utf8")
    }

    func testKeyIsTheKeyFieldsDecodedValue() throws {
        let validator = try EventValidator(topology: try topology())
        guard case .success(let a) = validator.validate(Array(#"{"user_id":"u\"1","event_type":"view","ts":1}"#.utf8)),
              case .success(let b) = validator.validate(Array(#"{"ts":1,"event_type":"cart","user_id":42}"#.utf8))
        else { return XCTFail("refused valid events") }
        XCTAssertEqual(String(decoding: a.key, as: UTF8.self), "u\"1")
        XCTAssertEqual(a.eventType, "view")
        XCTAssertEqual(String(decoding: b.key, as: UTF8.self), "42")
        XCTAssertEqual(b.eventType, "cart")
    }

    func testServerTimeIsAddedOnlyToEventsWithoutOne() throws {
        let validator = try EventValidator(topology: try topology())
        let now: Int64 = 1_767_225_600_123
        guard case .success(let stamped) = validator.validate(Array(#" {"user_id":"u1", "event_type":"view"}  "#.utf8), serverTimeMs: now) else {
            return XCTFail("an event without ts must get the server's")
        }
        let object = try JSONSerialization.jsonObject(with: Data(stamped.value)) as! [String: Any]
        XCTAssertEqual(object["ts"] as? Int64, now)
        XCTAssertEqual(object["user_id"] as? String, "u1")
        guard case .success(let kept) = validator.validate(Array(#"{"user_id":"u1","event_type":"view","ts":5}"#.utf8), serverTimeMs: now) else {
            return XCTFail("refused a valid event")
        }
        XCTAssertEqual(String(decoding: kept.value, as: UTF8.self), #"{"user_id":"u1","event_type":"view","ts":5}"#, "an event with ts is published as sent")
        // A wrong timestamp is an error, not something the server's time replaces.
        guard case .failure(let wrong) = validator.validate(Array(#"{"user_id":"u1","event_type":"view","ts":"x"}"#.utf8), serverTimeMs: now) else {
            return XCTFail("accepted a string timestamp")
        }
        XCTAssertEqual(wrong.reason, "wrong_type")
        // Without server time, a missing ts is refused as the stream would.
        guard case .failure(let missing) = validator.validate(Array(#"{"user_id":"u1","event_type":"view"}"#.utf8)) else {
            return XCTFail("accepted an event without ts")
        }
        XCTAssertEqual(missing.message, "missing field 'ts'")
        // With ts and another field missing, the other field is named.
        guard case .failure(let other) = validator.validate(Array(#"{"user_id":"u1"}"#.utf8), serverTimeMs: now) else {
            return XCTFail("accepted an event without event_type")
        }
        XCTAssertEqual(other.message, "missing field 'event_type'")
    }
}
