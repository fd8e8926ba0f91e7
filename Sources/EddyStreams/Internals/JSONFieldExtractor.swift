/// Where one wanted field's value sits inside a record's bytes. Strings point at their
/// content (without quotes); `escaped` says it holds backslash escapes to decode.
struct FieldSlot {
    enum Kind: UInt8 { case absent, string, number, bool, null, composite }
    var start: Int32 = 0
    var length: Int32 = 0
    var kind: Kind = .absent
    var escaped = false

    /// Where the value sits as JSON in the record: strings with their quotes.
    var jsonRange: Range<Int> {
        let quote = kind == .string ? 1 : 0
        return Int(start) - quote ..< Int(start + length) + quote
    }

    var typeName: String {
        switch kind {
        case .absent: return "absent"
        case .string: return "string"
        case .number: return "number"
        case .bool: return "boolean"
        case .null: return "null"
        case .composite: return "object/array"
        }
    }
}

/// A JSON syntax error with the byte position it was found at.
struct JSONSyntaxError: Error {
    let message: String
    let position: Int
}

/// The decoder's fast path: one pass over a JSON object that validates the whole document
/// but records only the top-level fields the topology uses, as positions into the input —
/// no allocation per record, no values built for fields nobody reads.
struct JSONFieldExtractor {
    /// Wanted field names; a field's id is its index here.
    let names: [[UInt8]]
    private let maxDepth = 64

    init(fields: [String]) {
        names = fields.map { Array($0.utf8) }
    }

    /// Validates `input` as one JSON object and fills `slots` (count == names.count).
    func extract(_ input: UnsafeRawBufferPointer, into slots: UnsafeMutableBufferPointer<FieldSlot>) throws(JSONSyntaxError) {
        for i in slots.indices { slots[i].kind = .absent }
        let bytes = input.bindMemory(to: UInt8.self)
        var p = 0
        let end = bytes.count
        skipSpace(bytes, &p)
        guard p < end, bytes[p] == UInt8(ascii: "{") else { throw JSONSyntaxError(message: "expected a JSON object", position: p) }
        p += 1
        skipSpace(bytes, &p)
        if p < end, bytes[p] == UInt8(ascii: "}") {
            p += 1
        } else {
            while true {
                guard p < end, bytes[p] == UInt8(ascii: "\"") else { throw JSONSyntaxError(message: "expected a field name", position: p) }
                let keyStart = p + 1
                let keyEscaped = try scanString(bytes, &p)
                let keyEnd = p - 1
                skipSpace(bytes, &p)
                guard p < end, bytes[p] == UInt8(ascii: ":") else { throw JSONSyntaxError(message: "expected ':'", position: p) }
                p += 1
                skipSpace(bytes, &p)
                let field = keyEscaped ? fieldID(unescape(bytes, keyStart, keyEnd)) : fieldID(bytes, keyStart, keyEnd)
                let valueStart = p
                let kind = try scanValue(bytes, &p, depth: 1)
                if let field {
                    var slot = FieldSlot(start: Int32(valueStart), length: Int32(p - valueStart), kind: kind, escaped: false)
                    if kind == .string {
                        slot.start += 1
                        slot.length -= 2
                        slot.escaped = containsBackslash(bytes, valueStart + 1, p - 1)
                    }
                    slots[field] = slot
                }
                skipSpace(bytes, &p)
                guard p < end else { throw JSONSyntaxError(message: "unterminated object", position: p) }
                if bytes[p] == UInt8(ascii: ",") {
                    p += 1
                    skipSpace(bytes, &p)
                    continue
                }
                guard bytes[p] == UInt8(ascii: "}") else { throw JSONSyntaxError(message: "expected ',' or '}'", position: p) }
                p += 1
                break
            }
        }
        skipSpace(bytes, &p)
        if p != end { throw JSONSyntaxError(message: "unexpected data after the object", position: p) }
    }

    private func fieldID(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int? {
        let n = to - from
        for (i, name) in names.enumerated() where name.count == n {
            var same = true
            for j in 0..<n where name[j] != b[from + j] { same = false; break }
            if same { return i }
        }
        return nil
    }

    private func fieldID(_ key: [UInt8]) -> Int? {
        names.firstIndex(of: key)
    }

    @inline(__always)
    private func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int) {
        while p < b.count {
            let c = b[p]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            p += 1
        }
    }

    private func containsBackslash(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Bool {
        var i = from
        while i < to { if b[i] == UInt8(ascii: "\\") { return true }; i += 1 }
        return false
    }

    /// Scans a string starting at its opening quote; leaves `p` after the closing quote.
    /// Returns whether it contained escapes.
    private func scanString(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int) throws(JSONSyntaxError) -> Bool {
        let start = p
        p += 1
        var escaped = false
        while p < b.count {
            let c = b[p]
            if c == UInt8(ascii: "\"") { p += 1; return escaped }
            if c < 0x20 { throw JSONSyntaxError(message: "control character in string", position: p) }
            if c == UInt8(ascii: "\\") {
                escaped = true
                guard p + 1 < b.count else { break }
                switch b[p + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    p += 2
                case UInt8(ascii: "u"):
                    guard p + 5 < b.count, (2...5).allSatisfy({ hexValue(b[p + $0]) != nil }) else {
                        throw JSONSyntaxError(message: "invalid \\u escape", position: p)
                    }
                    p += 6
                default:
                    throw JSONSyntaxError(message: "invalid escape", position: p)
                }
                continue
            }
            p += 1
        }
        throw JSONSyntaxError(message: "unterminated string", position: start)
    }

    private func scanValue(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int, depth: Int) throws(JSONSyntaxError) -> FieldSlot.Kind {
        guard p < b.count else { throw JSONSyntaxError(message: "expected a value", position: p) }
        switch b[p] {
        case UInt8(ascii: "\""):
            _ = try scanString(b, &p)
            return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber(b, &p)
            return .number
        case UInt8(ascii: "t"):
            try literal(b, &p, "true")
            return .bool
        case UInt8(ascii: "f"):
            try literal(b, &p, "false")
            return .bool
        case UInt8(ascii: "n"):
            try literal(b, &p, "null")
            return .null
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try scanComposite(b, &p, depth: depth)
            return .composite
        default:
            throw JSONSyntaxError(message: "unexpected character", position: p)
        }
    }

    private func literal(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int, _ word: StaticString) throws(JSONSyntaxError) {
        let n = word.utf8CodeUnitCount
        guard p + n <= b.count else { throw JSONSyntaxError(message: "invalid literal", position: p) }
        for i in 0..<n where b[p + i] != word.utf8Start[i] { throw JSONSyntaxError(message: "invalid literal", position: p) }
        p += n
    }

    private func scanNumber(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int) throws(JSONSyntaxError) {
        let start = p
        func digits() -> Int {
            let s = p
            while p < b.count, b[p] >= UInt8(ascii: "0"), b[p] <= UInt8(ascii: "9") { p += 1 }
            return p - s
        }
        if b[p] == UInt8(ascii: "-") { p += 1 }
        guard p < b.count else { throw JSONSyntaxError(message: "invalid number", position: start) }
        if b[p] == UInt8(ascii: "0") { p += 1 } else if digits() == 0 { throw JSONSyntaxError(message: "invalid number", position: start) }
        if p < b.count, b[p] == UInt8(ascii: ".") {
            p += 1
            if digits() == 0 { throw JSONSyntaxError(message: "invalid number", position: start) }
        }
        if p < b.count, b[p] == UInt8(ascii: "e") || b[p] == UInt8(ascii: "E") {
            p += 1
            if p < b.count, b[p] == UInt8(ascii: "+") || b[p] == UInt8(ascii: "-") { p += 1 }
            if digits() == 0 { throw JSONSyntaxError(message: "invalid number", position: start) }
        }
    }

    private func scanComposite(_ b: UnsafeBufferPointer<UInt8>, _ p: inout Int, depth: Int) throws(JSONSyntaxError) {
        guard depth < maxDepth else { throw JSONSyntaxError(message: "nested deeper than \(maxDepth)", position: p) }
        let isObject = b[p] == UInt8(ascii: "{")
        let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
        p += 1
        skipSpace(b, &p)
        if p < b.count, b[p] == close { p += 1; return }
        while true {
            if isObject {
                guard p < b.count, b[p] == UInt8(ascii: "\"") else { throw JSONSyntaxError(message: "expected a field name", position: p) }
                _ = try scanString(b, &p)
                skipSpace(b, &p)
                guard p < b.count, b[p] == UInt8(ascii: ":") else { throw JSONSyntaxError(message: "expected ':'", position: p) }
                p += 1
                skipSpace(b, &p)
            }
            _ = try scanValue(b, &p, depth: depth + 1)
            skipSpace(b, &p)
            guard p < b.count else { throw JSONSyntaxError(message: "unterminated \(isObject ? "object" : "array")", position: p) }
            if b[p] == UInt8(ascii: ",") { p += 1; skipSpace(b, &p); continue }
            guard b[p] == close else { throw JSONSyntaxError(message: "expected ',' or '\(Character(UnicodeScalar(close)))'", position: p) }
            p += 1
            return
        }
    }
}

@inline(__always)
func hexValue(_ c: UInt8) -> UInt32? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(c - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(c - UInt8(ascii: "A") + 10)
    default: return nil
    }
}

/// Decodes the escapes of an (already validated) JSON string's content into UTF-8.
func unescape(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(to - from)
    var i = from
    func hex4(_ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 4 | (hexValue(b[at + $1]) ?? 0) }
    }
    while i < to {
        let c = b[i]
        guard c == UInt8(ascii: "\\") else { out.append(c); i += 1; continue }
        let e = b[i + 1]
        i += 2
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = hex4(i)
            i += 4
            if (0xD800..<0xDC00).contains(scalar), i + 6 <= to, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                let low = hex4(i + 2)
                if (0xDC00..<0xE000).contains(low) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
            }
            out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8))
        default: out.append(e)  // \" \\ \/
        }
    }
    return out
}
