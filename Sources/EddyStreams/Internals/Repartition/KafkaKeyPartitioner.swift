/// The partition Kafka's default partitioner gives a key — murmur2 of its bytes, sign bit
/// cleared, modulo the partition count: the Java client's, and librdkafka's
/// `murmur2_random` (Eddy's producers and `eddy generate` use it). A source record keyed by
/// its key field sits in this partition when its producer partitioned by key this way;
/// one keyed otherwise is re-keyed here (`SourceRekeyOutput`), so both meet in one task.
enum KafkaKeyPartitioner {
    static func partition(of key: UnsafeRawBufferPointer, count: Int) -> Int32 {
        let m: UInt32 = 0x5bd1_e995
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: key.count)
        let whole = key.count & ~3
        var i = 0
        while i < whole {
            var k = UInt32(littleEndian: key.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            k = k &* m
            k ^= k >> 24
            k = k &* m
            h = h &* m
            h ^= k
            i += 4
        }
        let tail = key.count - whole
        if tail == 3 { h ^= UInt32(key[whole + 2]) << 16 }
        if tail >= 2 { h ^= UInt32(key[whole + 1]) << 8 }
        if tail >= 1 {
            h ^= UInt32(key[whole])
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(Int(h & 0x7fff_ffff) % count)
    }

    static func partition(of key: [UInt8], count: Int) -> Int32 {
        key.withUnsafeBytes { partition(of: $0, count: count) }
    }
}
