import EddyKafka

/// Why a record was dead-lettered: a short category for metrics, a sentence for the header.
struct DeadLetterReason: Error {
    enum Category: String, CaseIterable {
        case tooLarge = "too_large"
        case invalidJSON = "invalid_json"
        case invalidUTF8 = "invalid_utf8"
        case missingField = "missing_field"
        case wrongType = "wrong_type"
        /// The right type, but no plausible value: an event time outside 1970…9999, or a
        /// number too large to be finite.
        case outOfRange = "out_of_range"
        /// Later than its window's grace: stream time had moved past where it could count.
        case late
        /// A join found no table row for it (with `missing: dead_letter`).
        case missingRow = "missing_row"
    }
    let category: Category
    let message: String
}

/// Decodes and validates one record's value into field slots (the source's contract:
/// size, JSON syntax, UTF-8, required fields and their types, a plausible event time). One
/// per stream thread.
///
/// A class with its slots in a fixed buffer: the hot loop reads slots many times per
/// record, and a struct in a class property paid a copy or an exclusivity check each time
/// (measured with perf: ~15% of the thread's time).
final class RecordDecoder {
    private let topology: CompiledTopology
    private let extractor: JSONFieldExtractor
    let maxValueBytes: Int
    let fieldNames: [String]
    let slots: UnsafeMutableBufferPointer<FieldSlot>

    /// `alsoReading`: fields beyond the topology's whose slots the caller reads (ingest
    /// labels its metrics by event type); a field's id is its index in `fieldNames`.
    init(_ topology: CompiledTopology, alsoReading extra: [String] = []) {
        self.topology = topology
        fieldNames = topology.fields + extra.filter { !topology.fields.contains($0) }
        extractor = JSONFieldExtractor(fields: fieldNames)
        maxValueBytes = topology.topology.source.maxValueBytes
        slots = .allocate(capacity: fieldNames.count)
        slots.initialize(repeating: FieldSlot())
    }

    deinit { slots.deallocate() }

    /// 9999-12-31T23:59:59.999Z in epoch milliseconds: the last plausible event time. Later
    /// ones are mistakes, most often micro- or nanoseconds (1.7e15, 1.7e18), or numbers
    /// that are not even finite (1e400); taken as event time they would push stream time,
    /// windows and decay out of reach for every later record. Negative times are invalid
    /// in Kafka too (Kafka Streams drops them).
    static let latestEventTimeMs = 253_402_300_799_999.0

    func decode(_ value: UnsafeRawBufferPointer) throws(DeadLetterReason) {
        guard value.count <= maxValueBytes else {
            throw DeadLetterReason(category: .tooLarge, message: "value of \(value.count) bytes exceeds source.max_value_bytes (\(maxValueBytes))")
        }
        do {
            try extractor.extract(value, into: slots)
        } catch {
            throw DeadLetterReason(category: .invalidJSON, message: "invalid JSON: \(error.message) at byte \(error.position)")
        }
        if !isValidUTF8(value) {
            throw DeadLetterReason(category: .invalidUTF8, message: "invalid UTF-8")
        }
        for id in topology.requiredFields {
            let slot = slots[id]
            switch slot.kind {
            case .absent, .null:
                throw DeadLetterReason(category: .missingField, message: "missing field '\(topology.fields[id])'")
            case .string, .number, .bool:
                if slot.kind == .string && slot.length == 0 {
                    throw DeadLetterReason(category: .missingField, message: "field '\(topology.fields[id])' is empty")
                }
            case .composite:
                throw DeadLetterReason(category: .wrongType, message: "field '\(topology.fields[id])' is an object/array, expected a string or number")
            }
        }
        let ts = slots[topology.timestampField]
        if ts.kind != .number {
            throw DeadLetterReason(category: .wrongType, message: "field '\(topology.fields[topology.timestampField])' is a \(ts.typeName), expected a number (epoch milliseconds)")
        }
        let millis = double(topology.timestampField, from: value)
        if !(0...Self.latestEventTimeMs).contains(millis) {
            throw DeadLetterReason(category: .outOfRange, message: "field '\(topology.fields[topology.timestampField])' is \(String(decoding: rawBytes(topology.timestampField, from: value), as: UTF8.self)), not epoch milliseconds between 0 (1970) and \(Int64(Self.latestEventTimeMs)) (year 9999)")
        }
        for id in topology.numericFields {
            let slot = slots[id]
            if slot.kind != .number && slot.kind != .absent && slot.kind != .null {
                throw DeadLetterReason(category: .wrongType, message: "field '\(topology.fields[id])' is a \(slot.typeName), expected a number")
            }
            // A sum or score that became infinite (1e400) would stay infinite for good.
            if slot.kind == .number, !double(id, from: value).isFinite {
                throw DeadLetterReason(category: .outOfRange, message: "field '\(topology.fields[id])' is \(String(decoding: rawBytes(id, from: value), as: UTF8.self)), beyond the largest number (about 1.8e308)")
            }
        }
    }

    /// Finds the fields of a record Eddy wrote itself (an operator's output), without the
    /// source's validation.
    func extract(_ value: UnsafeRawBufferPointer) throws {
        try extractor.extract(value, into: slots)
    }

    /// Appends the value of field `id` as text: strings decoded, other scalars as written.
    @inline(__always)
    func appendValue(_ id: Int, from value: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let slot = slots[id]
        guard slot.kind != .absent else { return }
        let bytes = value.bindMemory(to: UInt8.self)
        let start = Int(slot.start), end = Int(slot.start + slot.length)
        if slot.escaped {
            out.append(contentsOf: unescape(bytes, start, end))
        } else {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<end]))
        }
    }

    /// Appends field `id` as JSON, as the record wrote it (strings with their quotes and
    /// escapes); `null` when absent.
    func appendJSON(_ id: Int, from value: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let slot = slots[id]
        guard slot.kind != .absent else {
            out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])  // null
            return
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: value.bindMemory(to: UInt8.self)[slot.jsonRange]))
    }

    /// Raw (undecoded) bytes of field `id`; for strings without escapes these are the value.
    @inline(__always)
    func rawBytes(_ id: Int, from value: UnsafeRawBufferPointer) -> UnsafeBufferPointer<UInt8> {
        let slot = slots[id]
        let bytes = value.bindMemory(to: UInt8.self)
        return UnsafeBufferPointer(rebasing: bytes[Int(slot.start)..<Int(slot.start + slot.length)])
    }

    func int64(_ id: Int, from value: UnsafeRawBufferPointer) -> Int64 {
        let raw = rawBytes(id, from: value)
        var n: Int64 = 0
        var negative = false
        for (i, c) in raw.enumerated() {
            if i == 0 && c == UInt8(ascii: "-") { negative = true; continue }
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else {
                return Int64(exactly: double(id, from: value).rounded(.down)) ?? 0
            }
            n = n &* 10 &+ Int64(c - UInt8(ascii: "0"))
        }
        return negative ? -n : n
    }

    /// The number in field `id` (0 if absent or null).
    func double(_ id: Int, from value: UnsafeRawBufferPointer) -> Double {
        guard slots[id].kind == .number else { return 0 }
        return parseDouble(rawBytes(id, from: value))
    }

    /// Field `id` equals `expected` (strings compared decoded, other scalars as written).
    func equals(_ id: Int, _ expected: [UInt8], from value: UnsafeRawBufferPointer) -> Bool {
        let slot = slots[id]
        guard slot.kind != .absent else { return false }
        if slot.escaped {
            var decoded: [UInt8] = []
            appendValue(id, from: value, to: &decoded)
            return decoded == expected
        }
        let raw = rawBytes(id, from: value)
        return raw.count == expected.count && raw.elementsEqual(expected)
    }
}

/// Exact decimal fast path (mantissa < 2^53 and at most 22 fraction digits, so one IEEE
/// division rounds correctly); anything else goes to the standard library's parser.
func parseDouble(_ raw: UnsafeBufferPointer<UInt8>) -> Double {
    var mantissa: UInt64 = 0
    var fractionDigits = 0
    var seenDot = false
    var negative = false
    for (i, c) in raw.enumerated() {
        if c == UInt8(ascii: "-"), i == 0 { negative = true; continue }
        if c == UInt8(ascii: "."), !seenDot { seenDot = true; continue }
        guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9"), mantissa < (1 << 49) else {
            return Double(String(decoding: raw, as: UTF8.self)) ?? 0
        }
        mantissa = mantissa * 10 + UInt64(c - UInt8(ascii: "0"))
        if seenDot { fractionDigits += 1 }
    }
    let d = fractionDigits == 0 ? Double(mantissa) : Double(mantissa) / powersOfTen[fractionDigits]
    return negative ? -d : d
}

private let powersOfTen: [Double] = (0...22).map { (0..<$0).reduce(1.0) { r, _ in r * 10 } }

/// ASCII fast path; full validation only for records with non-ASCII bytes.
func isValidUTF8(_ value: UnsafeRawBufferPointer) -> Bool {
    var ascii = true
    var i = 0
    let n = value.count
    while i + 8 <= n {
        if value.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { ascii = false; break }
        i += 8
    }
    if ascii {
        while i < n { if value[i] >= 0x80 { ascii = false; break }; i += 1 }
        if ascii { return true }
    }
    return String(validating: value.bindMemory(to: UInt8.self), as: UTF8.self) != nil
}
