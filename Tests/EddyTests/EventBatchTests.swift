@testable import EddyServe
import Foundation
import XCTest

/// Batch bodies split into the same events Foundation's JSON parser finds in them.
final class EventBatchTests: XCTestCase {
    private func split(_ text: String) throws -> [String] {
        try EventBatch.split(Array(text.utf8)).map { String(decoding: $0.bytes, as: UTF8.self) }
    }

    /// The reference: the array parsed whole, each element written back as an object.
    private func reference(_ text: String) throws -> [NSDictionary] {
        try (JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]).map { $0 as NSDictionary }
    }

    func testArrayElementsAreTheParsersElements() throws {
        var generator = SystemRandomNumberGenerator()
        let tricky = [#"a,b"#, #"]"#, #"[{"#, #"\"q\""#, #"back\\slash"#, #"}"#, "é ü"]
        for _ in 0..<200 {
            let count = Int.random(in: 1...8, using: &generator)
            let events = (0..<count).map { i -> String in
                let s = tricky.randomElement(using: &generator)!
                return #"{"user_id":"u\#(i)","note":"\#(s)","nested":{"list":[1,{"x":"\#(s)"}],"e":{}},"ts":\#(i)}"#
            }
            let spacing = [" ", "\n", "", "\t "].randomElement(using: &generator)!
            let body = "[" + spacing + events.joined(separator: spacing + "," + spacing) + spacing + "]" + spacing
            let parts = try split(body)
            XCTAssertEqual(try parts.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! NSDictionary }, try reference(body), body)
        }
    }

    func testNDJSONLinesAreEventsAndBlankLinesAreSkipped() throws {
        XCTAssertEqual(try split("{\"a\":1}\n\n  \n{\"b\":\"x,]\"}\r\n{\"c\":3}"), ["{\"a\":1}", "{\"b\":\"x,]\"}\r", "{\"c\":3}"])
        XCTAssertEqual(try split("{\"a\":1}"), ["{\"a\":1}"], "one object is a batch of one")
        // Events are named by their line, so a client can find the one an answer names.
        XCTAssertEqual(try EventBatch.split(Array("\n{\"a\":1}\n \n{\"b\":2}\n".utf8)).map(\.index), [1, 3])
        XCTAssertEqual(try EventBatch.split(Array("[{\"a\":1}, {\"b\":2}]".utf8)).map(\.index), [0, 1])
        XCTAssertEqual(try split("  "), [])
        XCTAssertEqual(try split("[]"), [])
    }

    func testMalformedArraysAreRefusedWhole() {
        for body in [#"[{"a":1}"#, #"[{"a":1},]"#, #"[,{"a":1}]"#, #"[{"a":1}] x"#, #"[{"a":"]"#] {
            XCTAssertThrowsError(try EventBatch.split(Array(body.utf8)), body)
        }
    }

    func testAnElementThatIsNoObjectIsKeptForTheValidatorToRefuse() throws {
        XCTAssertEqual(try split(#"[{"a":1}, 7, "x"]"#), [#"{"a":1}"#, " 7", #" "x""#])
    }
}
