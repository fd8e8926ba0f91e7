import EddyConfig
import XCTest

/// Checks config error messages: each names the file `t.yaml` and its line first, then the
/// field at fault and says what is wrong. `cases`: (message, field, text it must contain).
func assertConfigErrors(_ cases: [(String, String, String)], file: StaticString = #filePath, line: UInt = #line) {
    for (message, field, text) in cases {
        XCTAssertTrue(message.hasPrefix("t.yaml:"), message, file: file, line: line)
        XCTAssertTrue(message.contains(field), "\(message) should name \(field)", file: file, line: line)
        XCTAssertTrue(message.contains(text), "\(message) should say \(text)", file: file, line: line)
    }
}

/// The error a topology file `t.yaml` holding `nodes` (and `tables`, YAML lines) gives, as
/// printed; "no error" if it parses.
func configError(nodes: String, tables: String = "") -> String {
    do {
        _ = try TopologyFile.parse("application: a\nsource: {topic: clicks, key: user_id, timestamp: ts}\n\(tables)nodes:\n\(nodes)", file: "t.yaml")
        return "no error"
    } catch {
        return "\(error)"
    }
}
