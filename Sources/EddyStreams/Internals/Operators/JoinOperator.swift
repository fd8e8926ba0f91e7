/// `join`: enriches each record with columns of a global table's row (`Topology.Join`).
///
/// The joined record is the record's JSON without its own fields of the joined names, with
/// the columns appended as the row wrote them. It is decoded again with this operator's
/// decoder (the topology's field ids), so downstream operators read it like any record.
final class JoinOperator: OperatorNode {
    struct Spec: Sendable {
        /// The table's place in `CompiledTopology.tables`.
        let table: Int
        /// The field holding the row's key.
        let on: Int
        /// Per joined field: its column in the table, its field id, and `"name":` as JSON.
        let columns: [Int]
        let fieldIDs: [Int]
        let names: [[UInt8]]
        let missing: Topology.Join.MissingRow
        /// Whether the records joined are source records: only those can be dead-lettered
        /// (a closed session or an aggregate's row that cannot be used is dropped, counted).
        let readsSource: Bool
        /// Joined fields downstream operators need present (group fields) or numeric (sums,
        /// prices, scores): checked on the joined record, as the source checks its own.
        var required: [Int] = []
        var numeric: [Int] = []
    }

    private let spec: Spec
    private let table: GlobalTable
    private let decoder: RecordDecoder
    private let fieldNames: [String]
    private let metrics: StreamsMetrics
    private var key: [UInt8] = []
    private var joined: [UInt8] = []
    /// Misses since the last commit (metrics are added per commit, not per record).
    private var misses = 0

    init(index: Int, spec: Spec, table: GlobalTable, topology: CompiledTopology, metrics: StreamsMetrics, recordSinks: [CompiledSink]) {
        self.spec = spec
        self.table = table
        self.metrics = metrics
        decoder = RecordDecoder(topology)
        fieldNames = topology.fields
        super.init(index: index, recordSinks: recordSinks)
    }

    override func process(_ record: Record, in task: StreamTask) throws {
        key.removeAll(keepingCapacity: true)
        let kind = record.fields.slots[spec.on].kind
        var row: [[UInt8]?]?
        if kind != .absent && kind != .null {
            record.fields.appendValue(spec.on, from: record.value, to: &key)
            row = table.row(key)
        }
        if row == nil {
            misses += 1
            switch spec.missing {
            case .drop: return
            case .deadLetter:
                task.deadLetter(DeadLetterReason(category: .missingRow, message: kind == .absent || kind == .null
                    ? "no field '\(fieldNames[spec.on])' to look up in table \(table.name)"
                    : "table \(table.name) has no row '\(String(decoding: key, as: UTF8.self))'"))
                return
            case .null: break
            }
        }
        build(from: record, row: row)
        try joined.withUnsafeBytes { value in
            try decoder.extract(value)
            if let problem = check() {
                if spec.readsSource { task.deadLetter(problem) } else { misses += 1 }
                return
            }
            try forward(Record(value: value, fields: decoder, timestamp: record.timestamp, offset: record.offset), in: task)
        }
    }

    /// The record's JSON object without its own fields of the joined names, then the
    /// joined columns, before its closing brace. (The source decoder validated the object,
    /// so the scans below find what they look for.)
    private func build(from record: Record, row: [[UInt8]?]?) {
        let bytes = record.value.bindMemory(to: UInt8.self)
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
        var end = bytes.count
        while end > 0 && isSpace(bytes[end - 1]) { end -= 1 }
        end -= 1  // the '}'
        // The members to leave out: from the key's opening quote to the value's end, with
        // the comma that joins the member to its neighbour.
        var cuts: [Range<Int>] = []
        for id in spec.fieldIDs where record.fields.slots[id].kind != .absent {
            let value = record.fields.slots[id].jsonRange
            var p = value.lowerBound - 1
            while isSpace(bytes[p]) { p -= 1 }
            p -= 1  // ':'
            while isSpace(bytes[p]) { p -= 1 }
            // bytes[p] is the key's closing quote: find its opening one (not escaped).
            p -= 1
            while !(bytes[p] == UInt8(ascii: "\"") && Self.isUnescaped(bytes, p)) { p -= 1 }
            var before = p - 1
            while isSpace(bytes[before]) { before -= 1 }
            if bytes[before] == UInt8(ascii: ",") {
                cuts.append(before..<value.upperBound)
            } else {  // the first member: take the comma after it instead, if any
                var after = value.upperBound
                while after < end && isSpace(bytes[after]) { after += 1 }
                cuts.append(p..<(after < end && bytes[after] == UInt8(ascii: ",") ? after + 1 : value.upperBound))
            }
        }
        cuts.sort { $0.lowerBound < $1.lowerBound }
        joined.removeAll(keepingCapacity: true)
        var at = 0
        for cut in cuts {
            if cut.lowerBound > at { joined.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[at..<cut.lowerBound])) }
            at = max(at, cut.upperBound)
        }
        joined.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[at..<end]))
        // Leaving out the first two members leaves the comma that followed the second one
        // first: drop it.
        if let brace = joined.firstIndex(of: UInt8(ascii: "{")), let next = joined[(brace + 1)...].firstIndex(where: { !isSpace($0) }),
           joined[next] == UInt8(ascii: ",") {
            joined.remove(at: next)
        }
        var last = joined.count
        while last > 0 && isSpace(joined[last - 1]) { last -= 1 }
        var empty = last > 0 && joined[last - 1] == UInt8(ascii: "{")
        for (j, column) in spec.columns.enumerated() {
            if !empty { joined.append(UInt8(ascii: ",")) }
            empty = false
            joined.append(contentsOf: spec.names[j])
            if let raw = row?[column] ?? nil { joined.append(contentsOf: raw) } else { joined.append(contentsOf: Self.null) }
        }
        joined.append(UInt8(ascii: "}"))
    }

    /// Whether the quote at `p` is not escaped (an even number of backslashes before it).
    private static func isUnescaped(_ bytes: UnsafeBufferPointer<UInt8>, _ p: Int) -> Bool {
        var backslashes = 0
        var q = p - 1
        while q >= 0 && bytes[q] == UInt8(ascii: "\\") { backslashes += 1; q -= 1 }
        return backslashes % 2 == 0
    }

    private static let null = Array("null".utf8)

    /// A joined field that downstream operators cannot use, as the source decoder would
    /// have said it.
    private func check() -> DeadLetterReason? {
        for id in spec.required {
            let slot = decoder.slots[id]
            if slot.kind == .absent || slot.kind == .null || (slot.kind == .string && slot.length == 0) {
                return DeadLetterReason(category: .missingField, message: "field '\(fieldNames[id])' from table \(table.name) (row '\(String(decoding: key, as: UTF8.self))') is missing")
            }
        }
        for id in spec.numeric {
            let slot = decoder.slots[id]
            if slot.kind != .number && slot.kind != .absent && slot.kind != .null {
                return DeadLetterReason(category: .wrongType, message: "field '\(fieldNames[id])' from table \(table.name) (row '\(String(decoding: key, as: UTF8.self))') is a \(slot.typeName), expected a number")
            }
        }
        return nil
    }

    override func committed() {
        guard misses > 0 else { return }
        metrics.joinMisses.add(misses, ordering: .relaxed)
        misses = 0
    }
}
