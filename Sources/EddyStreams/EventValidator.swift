/// Checks one event against a topology's source exactly as a stream thread does before it
/// processes the event (the same `RecordDecoder`, so the same rules and the same reasons as
/// the dead-letter path), for a service that accepts events on the topology's behalf.
///
/// Not Sendable: it reuses one set of field slots; keep one per task or request.
public final class EventValidator {
    /// An event fit to publish.
    public struct Accepted {
        /// The event's bytes, with the server's timestamp added when it had none.
        public let value: [UInt8]
        /// The key field's value: the Kafka key the source's partitioning expects.
        public let key: [UInt8]
        /// The event-type field's value, when it has one (for metrics).
        public let eventType: String?
    }

    /// Why an event is refused: the dead-letter category (`missing_field`, `invalid_json`, …)
    /// and a sentence naming the field.
    public struct Rejected: Error {
        public let reason: String
        public let message: String
        public let eventType: String?
    }

    public let sourceTopic: String
    public let timestampField: String
    /// Events larger than this are refused without being parsed (`source.max_value_bytes`).
    public let maxEventBytes: Int
    /// Fields every event must have besides the timestamp: a non-empty string, a number or
    /// a boolean each (what the query document's event schema says).
    public let requiredFields: [String]
    /// Fields that must be numbers when present.
    public let numericFields: [String]
    private let decoder: RecordDecoder
    private let keyField: Int
    private let timestampID: Int
    private let eventTypeID: Int?

    /// `eventTypeField` labels the metrics; it need not be a field the topology uses.
    public init(topology: Topology, eventTypeField: String? = "event_type") throws {
        let compiled = try TopologyCompiler.compile(topology)
        let decoder = RecordDecoder(compiled, alsoReading: eventTypeField.map { [$0] } ?? [])
        self.decoder = decoder
        sourceTopic = topology.source.topic
        timestampField = topology.source.timestampField
        maxEventBytes = decoder.maxValueBytes
        keyField = compiled.keyField
        timestampID = compiled.timestampField
        eventTypeID = eventTypeField.flatMap { decoder.fieldNames.firstIndex(of: $0) }
        requiredFields = compiled.requiredFields.filter { $0 != compiled.timestampField }.map { compiled.fields[$0] }
        numericFields = compiled.numericFields.map { compiled.fields[$0] }
    }

    /// Validates `value`; `serverTimeMs`, when given, becomes the event time of an event
    /// that has none (its timestamp field is added to the object).
    public func validate(_ value: [UInt8], serverTimeMs: Int64? = nil) -> Result<Accepted, Rejected> {
        switch check(value) {
        case .success:
            return .success(accepted(value))
        case .failure(let reason):
            guard let serverTimeMs, reason.category == .missingField, decoder.slots[timestampID].kind == .absent,
                  let stamped = Self.adding(field: timestampField, value: serverTimeMs, to: value)
            else { return .failure(rejected(reason, value)) }
            switch check(stamped) {
            case .success: return .success(accepted(stamped))
            case .failure(let again) where again.category == .tooLarge:
                // The stream would dead-letter the stamped event: say why it grew.
                let why = DeadLetterReason(category: .tooLarge, message: "with the server's timestamp added the event is \(stamped.count) bytes, over source.max_value_bytes (\(maxEventBytes)); send '\(timestampField)' or a smaller event")
                return .failure(rejected(why, stamped))
            case .failure(let again): return .failure(rejected(again, stamped))
            }
        }
    }

    private func check(_ value: [UInt8]) -> Result<Void, DeadLetterReason> {
        value.withUnsafeBytes { bytes in
            do throws(DeadLetterReason) {
                try decoder.decode(bytes)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
    }

    /// Reads the key and event type from the slots `check` just filled.
    private func accepted(_ value: [UInt8]) -> Accepted {
        value.withUnsafeBytes { bytes in
            var key: [UInt8] = []
            decoder.appendValue(keyField, from: bytes, to: &key)
            return Accepted(value: value, key: key, eventType: eventType(bytes))
        }
    }

    private func rejected(_ reason: DeadLetterReason, _ value: [UInt8]) -> Rejected {
        // Slots are positions into a parsed object: after a JSON or size error there are none.
        let parsed = reason.category != .invalidJSON && reason.category != .tooLarge
        let type = parsed ? value.withUnsafeBytes { eventType($0) } : nil
        return Rejected(reason: reason.category.rawValue, message: reason.message, eventType: type)
    }

    private func eventType(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let id = eventTypeID, decoder.slots[id].kind == .string else { return nil }
        var out: [UInt8] = []
        decoder.appendValue(id, from: bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `object` with `"field": value` added before its closing brace; nil if it does not
    /// end with one (it then fails validation as it is).
    static func adding(field: String, value: Int64, to object: [UInt8]) -> [UInt8]? {
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
        guard let close = object.lastIndex(where: { !isSpace($0) }), object[close] == UInt8(ascii: "}"),
              let open = object.firstIndex(where: { !isSpace($0) }), open < close else { return nil }
        var out = Array(object[..<close])
        if object[(open + 1)..<close].contains(where: { !isSpace($0) }) { out.append(UInt8(ascii: ",")) }
        out += Array("\(jsonString(field)):\(value)}".utf8)
        return out
    }

    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
