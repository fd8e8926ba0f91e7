/// Keyed records held until a commit sends them to a repartition topic: keys and values
/// back to back in one buffer (no allocation per record), with their end offsets.
struct KeyedRecordBuffer {
    private var bytes: [UInt8] = []
    private var ends: [(keyEnd: Int, valueEnd: Int)] = []

    var isEmpty: Bool { ends.isEmpty }
    var byteCount: Int { bytes.count }

    mutating func append(key: [UInt8], value: [UInt8]) {
        bytes.append(contentsOf: key)
        let keyEnd = bytes.count
        bytes.append(contentsOf: value)
        ends.append((keyEnd, bytes.count))
    }

    func forEach(_ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void) rethrows {
        var start = 0
        for end in ends {
            try body(Array(bytes[start..<end.keyEnd]), Array(bytes[end.keyEnd..<end.valueEnd]))
            start = end.valueEnd
        }
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }
}
