/// The most recent values of one group of a recent-values aggregate, oldest first, held in
/// their stored encoding (each value: event time Int64, length UInt32, both little-endian,
/// then its bytes) so a commit copies them into the store as they are.
///
/// Order is by event time; a value whose time ties with kept ones goes after them, so
/// within one input partition ties keep arrival order.
///
/// Dropping the oldest value only moves `head`; the dropped bytes are compacted away once
/// they are over half the buffer (measured: moving the whole list per record cost ~4% of
/// the stream thread on workload b of Benchmarks/compare).
struct RecentValues {
    private var bytes: [UInt8] = []
    /// Where the oldest kept value starts in `bytes`.
    private var head = 0
    private(set) var count = 0
    /// Event time of the newest (last) value.
    private var newest = Int64.min

    /// Inserts `value` in event-time order, then drops the oldest values beyond `limit`.
    /// `distinct`: a value is kept once, at its latest time — an equal value kept with a
    /// later time makes this one a no-op, one kept with an earlier (or the same) time goes.
    @inline(__always)
    mutating func insert(_ value: UnsafeBufferPointer<UInt8>, at time: Int64, keeping limit: Int, distinct: Bool = false) {
        if distinct, let q = position(of: value) {
            if time < timeOf(q) { return }
            bytes.removeSubrange(q..<(q + 12 + lengthOf(q)))
            count -= 1
        }
        if time >= newest {
            append(value, at: time, to: &bytes)
            newest = time
        } else {
            // Late: it goes before the first value that is later.
            if count >= limit, time < timeOf(head) { return }  // it would be dropped at once
            var position = head
            while timeOf(position) <= time { position += 12 + lengthOf(position) }
            var item: [UInt8] = []
            append(value, at: time, to: &item)
            bytes.insert(contentsOf: item, at: position)
        }
        count += 1
        if count > limit {
            head += 12 + lengthOf(head)
            count -= 1
            if head > bytes.count / 2 {
                bytes.removeFirst(head)
                head = 0
            }
        }
    }

    /// Where a value equal to `value` starts, if one is kept.
    private func position(of value: UnsafeBufferPointer<UInt8>) -> Int? {
        var p = head
        while p < bytes.count {
            let n = lengthOf(p)
            if n == value.count, bytes[(p + 12)..<(p + 12 + n)].elementsEqual(value) { return p }
            p += 12 + n
        }
        return nil
    }

    /// The values, newest first.
    var newestFirst: [[UInt8]] {
        var values: [[UInt8]] = []
        values.reserveCapacity(count)
        var p = head
        while p < bytes.count {
            values.append(Array(bytes[(p + 12)..<(p + 12 + lengthOf(p))]))
            p += 12 + lengthOf(p)
        }
        return values.reversed()
    }

    /// Inserts every value of another encoded list (a stored value or a combiner's partial).
    /// Stops at a malformed entry rather than reading past the end.
    mutating func merge(_ encoded: UnsafeRawBufferPointer, keeping limit: Int, distinct: Bool = false) {
        var p = 0
        while p + 12 <= encoded.count {
            let time = Int64(littleEndian: encoded.loadUnaligned(fromByteOffset: p, as: Int64.self))
            let n = Int(UInt32(littleEndian: encoded.loadUnaligned(fromByteOffset: p + 8, as: UInt32.self)))
            guard p + 12 + n <= encoded.count else { return }
            // Bytes are bytes: viewing raw storage as UInt8 needs no binding.
            let value = UnsafeBufferPointer(start: encoded.baseAddress!.advanced(by: p + 12).assumingMemoryBound(to: UInt8.self), count: n)
            insert(value, at: time, keeping: limit, distinct: distinct)
            p += 12 + n
        }
    }

    /// Heap bytes the list holds (its buffer's capacity; 0 before the first value).
    var allocatedBytes: Int { bytes.capacity }

    /// The values in their stored encoding.
    var encoded: ArraySlice<UInt8> { bytes[head...] }

    /// The values as a JSON array of strings, newest first.
    func appendJSON(to out: inout [UInt8]) {
        var starts: [Int] = []
        starts.reserveCapacity(count)
        var p = head
        while p < bytes.count {
            starts.append(p)
            p += 12 + lengthOf(p)
        }
        out.append(UInt8(ascii: "["))
        for (i, start) in starts.reversed().enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(bytes[(start + 12)..<(start + 12 + lengthOf(start))], to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    @inline(__always) private func timeOf(_ p: Int) -> Int64 {
        bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: p, as: Int64.self)) }
    }

    @inline(__always) private func lengthOf(_ p: Int) -> Int {
        bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: p + 8, as: UInt32.self))) }
    }

    @inline(__always) private func append(_ value: UnsafeBufferPointer<UInt8>, at time: Int64, to out: inout [UInt8]) {
        withUnsafeBytes(of: time.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(value.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: value)
    }
}

/// `text` (UTF-8) as a JSON string: quotes, backslashes and control characters escaped.
func appendJSONString(_ text: ArraySlice<UInt8>, to out: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    out.append(UInt8(ascii: "\""))
    for byte in text {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            out.append(UInt8(ascii: "\\"))
            out.append(byte)
        case 0..<0x20:
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xf)])
        default:
            out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
}
