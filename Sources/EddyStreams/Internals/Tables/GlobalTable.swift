/// One stream thread's copy of a global table (`Topology.Table`): the rows of a topic by
/// record key, each holding the columns the topology's joins read, as the JSON the row
/// wrote them in (so a join copies them into a record without decoding and re-encoding).
///
/// In memory: a catalog of 100k items with a few columns is tens of MB per thread. The
/// topic is the table's changelog; a start reads it again (`GlobalTableReader`).
final class GlobalTable {
    let name: String
    let topic: String
    /// The columns kept, by the name they have in the row's JSON.
    let columns: [String]
    private let extractor: JSONFieldExtractor
    private let slots: UnsafeMutableBufferPointer<FieldSlot>
    /// key → the raw JSON of each column (nil: the row has no such field, or it is null).
    private(set) var rows: [[UInt8]: [[UInt8]?]] = [:]
    /// Records that could not be rows (no key, not a JSON object); the row they would
    /// have replaced is kept.
    private(set) var invalidRecords = 0
    /// The last invalid record's problem, for the log.
    private(set) var lastProblem: String?

    init(name: String, topic: String, columns: [String]) {
        self.name = name
        self.topic = topic
        self.columns = columns
        extractor = JSONFieldExtractor(fields: columns)
        slots = .allocate(capacity: columns.count)
        slots.initialize(repeating: FieldSlot())
    }

    deinit { slots.deallocate() }

    /// Applies one record of the table's topic: a value replaces the key's row, no value
    /// (a tombstone) deletes it.
    func apply(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?) {
        guard let key, key.count > 0 else {
            reject("a record without a key (a table row needs one)")
            return
        }
        guard let value else {
            rows[Array(key)] = nil
            return
        }
        do {
            try extractor.extract(value, into: slots)
        } catch {
            reject("row '\(String(decoding: key, as: UTF8.self))' is not a JSON object: \(error.message) at byte \(error.position)")
            return
        }
        let bytes = value.bindMemory(to: UInt8.self)
        rows[Array(key)] = slots.map { slot -> [UInt8]? in
            switch slot.kind {
            case .absent, .null: return nil
            case .string:
                // The slot holds the content; the row's JSON includes the quotes.
                return Array(bytes[Int(slot.start) - 1 ..< Int(slot.start + slot.length) + 1])
            case .number, .bool, .composite:
                return Array(bytes[Int(slot.start) ..< Int(slot.start + slot.length)])
            }
        }
    }

    /// The row of `key` (nil: none).
    @inline(__always)
    func row(_ key: [UInt8]) -> [[UInt8]?]? { rows[key] }

    var count: Int { rows.count }

    private func reject(_ problem: String) {
        invalidRecords += 1
        lastProblem = problem
    }
}
