@testable import EddyStreams
import Foundation
import XCTest

final class JSONFieldExtractorTests: XCTestCase {
    let extractor = JSONFieldExtractor(fields: ["user_id", "ts", "price", "tags"])

    private func extract(_ json: String) throws -> [FieldSlot] {
        let slots = UnsafeMutableBufferPointer<FieldSlot>.allocate(capacity: 4)
        defer { slots.deallocate() }
        slots.initialize(repeating: FieldSlot())
        let bytes = Array(json.utf8)
        try bytes.withUnsafeBytes { raw in try extractor.extract(raw, into: slots) }
        return Array(slots)
    }

    private func text(_ json: String, _ slot: FieldSlot) -> String {
        let bytes = Array(json.utf8)[Int(slot.start)..<Int(slot.start + slot.length)]
        return String(decoding: bytes, as: UTF8.self)
    }

    func testFindsWantedFieldsAndSkipsTheRest() throws {
        let json = #"{"other": {"a": [1, 2, {"b": null}]}, "user_id": "u1", "ts": 1767225600000, "price": -12.5e2, "tags": ["x"], "flag": true}"#
        let slots = try extract(json)
        XCTAssertEqual(slots[0].kind, .string)
        XCTAssertEqual(text(json, slots[0]), "u1")
        XCTAssertEqual(slots[1].kind, .number)
        XCTAssertEqual(text(json, slots[1]), "1767225600000")
        XCTAssertEqual(text(json, slots[2]), "-12.5e2")
        XCTAssertEqual(slots[3].kind, .composite)
    }

    func testAbsentFieldsAreMarkedAbsentOnEveryCall() throws {
        _ = try extract(#"{"user_id": "u1", "ts": 1}"#)
        let slots = try extract(#"{"ts": 2}"#)
        XCTAssertEqual(slots[0].kind, .absent)
        XCTAssertEqual(slots[1].kind, .number)
    }

    func testEscapedStringsAreFlaggedAndDecodeCorrectly() throws {
        let json = #"{"user_id": "a\"b\\c\u00e9\ud83d\ude00"}"#
        let slots = try extract(json)
        XCTAssertTrue(slots[0].escaped)
        let bytes = Array(json.utf8)
        let decoded = bytes.withUnsafeBufferPointer { unescape($0, Int(slots[0].start), Int(slots[0].start + slots[0].length)) }
        XCTAssertEqual(String(decoding: decoded, as: UTF8.self), "a\"b\\cé😀")
    }

    func testEscapedKeysStillMatch() throws {
        let slots = try extract(#"{"user\u005fid": "u9"}"#)
        XCTAssertEqual(slots[0].kind, .string)
    }

    func testRejectsInvalidDocuments() {
        let invalid = [
            "", "[]", "{", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":-}"#,
            #"{"a":tru}"#, #"{"a":"x}"#, #"{"a":"\q"}"#, #"{"a":"\u12"}"#, #"{"a":[1,2}"#, #"{"a":1} x"#,
            "{\"a\":\"line\nbreak\"}", String(repeating: "[", count: 100),
        ]
        for doc in invalid {
            XCTAssertThrowsError(try extract(doc), "accepted: \(doc)")
        }
    }

    func testDeepNestingIsRejectedNotACrash() {
        let deep = "{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        XCTAssertThrowsError(try extract(deep))
    }

    func testAgreesWithJSONSerializationOnGeneratedEvents() throws {
        let lines = [
            #"{"user_id":"u1","session_id":"s1","item_id":"i2","category":"c3","event_type":"cart","ts":1767225601553,"price":123.45}"#,
            #"{ "user_id" : "u\u0032" , "ts" : 0 }"#,
        ]
        for line in lines {
            let slots = try extract(line)
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let bytes = Array(line.utf8)
            let user = bytes.withUnsafeBufferPointer { unescape($0, Int(slots[0].start), Int(slots[0].start + slots[0].length)) }
            XCTAssertEqual(String(decoding: user, as: UTF8.self), object["user_id"] as? String)
        }
    }

    func testDecimalParsingIsCorrectlyRounded() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let cents = Int.random(in: 0..<100_000_000, using: &rng)
            let text = "\(cents / 100).\(String(format: "%02d", cents % 100))"
            let parsed = Array(text.utf8).withUnsafeBufferPointer { parseDouble($0) }
            XCTAssertEqual(parsed, Double(text)!, text)
        }
        for text in ["0", "-0.5", "1e3", "12345678901234567890", "3.14159265358979323846", "-7"] {
            XCTAssertEqual(Array(text.utf8).withUnsafeBufferPointer { parseDouble($0) }, Double(text)!, text)
        }
    }

    func testUTF8Validation() {
        XCTAssertTrue(Array("plain ascii, long enough to use the word loop".utf8).withUnsafeBytes { isValidUTF8($0) })
        XCTAssertTrue(Array("naïve café 😀".utf8).withUnsafeBytes { isValidUTF8($0) })
        XCTAssertFalse([0x61, 0xC3, 0x28].withUnsafeBytes { isValidUTF8($0) })
        XCTAssertFalse([0xED, 0xA0, 0x80].withUnsafeBytes { isValidUTF8($0) })  // a lone surrogate
    }
}
