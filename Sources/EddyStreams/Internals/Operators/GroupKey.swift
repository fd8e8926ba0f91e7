/// A group key in a store, a cache or a repartition record: each group field's value,
/// unescaped, as a 4-byte little-endian length and its bytes. The same bytes for the same
/// values whoever builds it, so a key's repartition partition and its store entry agree
/// across operators and processes.
struct GroupKey: Hashable {
    let bytes: [UInt8]

    /// Hashes its bytes in one call: `[UInt8]`'s own hashing feeds the hasher one byte at a
    /// time (perf: 9% of the thread's time).
    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    /// Builds `fields`' key of `record` into `buffer` (emptied first); `scratch` holds an
    /// escaped value while it is decoded. Buffers are the caller's, so the hot path allocates
    /// nothing: take a copy of exactly its size to keep it (`AggregateTable.entry` says why).
    @inline(__always)
    static func build(_ fields: [Int], of record: Record, into buffer: inout [UInt8], scratch: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        let decoder = record.fields
        for id in fields {
            if decoder.slots[id].escaped || decoder.slots[id].kind == .absent {
                scratch.removeAll(keepingCapacity: true)
                decoder.appendValue(id, from: record.value, to: &scratch)
                scratch.withUnsafeBufferPointer { appendLengthPrefixed($0, to: &buffer) }
            } else {
                appendLengthPrefixed(decoder.rawBytes(id, from: record.value), to: &buffer)
            }
        }
    }

    /// A copy of `buffer` of exactly its size, to keep.
    @inline(__always)
    static func copy(_ buffer: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: buffer.count) { out, count in
            count = out.initialize(fromContentsOf: buffer)
        }
    }
}
