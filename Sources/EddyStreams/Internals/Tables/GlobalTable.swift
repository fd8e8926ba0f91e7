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

    /// One thread's copies of the topology's tables, in `CompiledTopology.tables` order.
    static func copies(of topology: CompiledTopology) -> [GlobalTable] {
        topology.tables.map { GlobalTable(name: $0.name, topic: $0.topic, columns: $0.columns) }
    }

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
        guard isValidUTF8(value) else {
            reject("row '\(String(decoding: key, as: UTF8.self))' is not valid UTF-8")
            return
        }
        do {
            try extractor.extract(value, into: slots)
        } catch {
            reject("row '\(String(decoding: key, as: UTF8.self))' is not a JSON object: \(error.message) at byte \(error.position)")
            return
        }
        let bytes = value.bindMemory(to: UInt8.self)
        rows[Array(key)] = slots.map { slot in slot.kind == .absent || slot.kind == .null ? nil : Array(bytes[slot.jsonRange]) }
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
