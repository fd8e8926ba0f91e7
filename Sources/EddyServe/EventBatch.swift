/// Splits a batch body into its events without parsing them: a JSON array of objects, or
/// NDJSON (one object per line, blank lines skipped). Each event is then validated alone,
/// so one bad event cannot hide its neighbours.
enum EventBatch {
    struct Malformed: Error, Equatable {
        let message: String
    }

    /// One event of a batch and where the client put it: the element's position in an
    /// array, the line number (from 0) in NDJSON — what answers name events by.
    struct Event {
        let index: Int
        let bytes: ArraySlice<UInt8>
    }

    /// The events of `body`; an array's elements are found by tracking strings and nesting,
    /// so commas and brackets inside strings do not split.
    static func split(_ body: [UInt8]) throws(Malformed) -> [Event] {
        guard let first = body.firstIndex(where: { !isSpace($0) }) else { return [] }
        return body[first] == UInt8(ascii: "[") ? try splitArray(body, from: first) : splitLines(body)
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }

    private static func splitLines(_ body: [UInt8]) -> [Event] {
        body.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
            .filter { $0.element.contains { !isSpace($0) } }
            .map { Event(index: $0.offset, bytes: $0.element) }
    }

    private static func splitArray(_ body: [UInt8], from open: Int) throws(Malformed) -> [Event] {
        var events: [Event] = []
        var depth = 0
        var inString = false
        var escaped = false
        var start = open + 1
        var i = open + 1
        while i < body.count {
            let c = body[i]
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
            } else if depth > 0 && (c == UInt8(ascii: "}") || c == UInt8(ascii: "]")) {
                depth -= 1
            } else if depth == 0 && (c == UInt8(ascii: ",") || c == UInt8(ascii: "]")) {
                // The end of an element (or of the array).
                let element = body[start..<i]
                let blank = !element.contains { !isSpace($0) }
                if blank && (c == UInt8(ascii: ",") || !events.isEmpty) {
                    throw Malformed(message: "empty element at byte \(i) of the array")
                }
                if !blank { events.append(Event(index: events.count, bytes: element)) }
                if c == UInt8(ascii: "]") {
                    guard !body[(i + 1)...].contains(where: { !isSpace($0) }) else {
                        throw Malformed(message: "text after the array's closing bracket at byte \(i + 1)")
                    }
                    return events
                }
                start = i + 1
            }
            i += 1
        }
        throw Malformed(message: "the array is not closed (\(body.count) bytes read)")
    }
}
