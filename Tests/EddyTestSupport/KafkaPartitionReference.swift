/// Which partition the producer's `murmur2_random` partitioner (the Java client's default)
/// puts a key in, written out plainly for references: Kafka's murmur2 of the key bytes,
/// its sign bit cleared, modulo the partition count.
public func kafkaPartition(ofKey key: String, partitions: Int) -> Int {
    let data = Array(key.utf8)
    let m: UInt32 = 0x5bd1_e995
    var h: UInt32 = 0x9747_b28c ^ UInt32(data.count)
    let whole = data.count / 4 * 4
    for i in stride(from: 0, to: whole, by: 4) {
        var k = UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
        k = k &* m
        k ^= k >> 24
        k = k &* m
        h = h &* m
        h ^= k
    }
    let tail = data.count - whole
    if tail == 3 { h ^= UInt32(data[whole + 2]) << 16 }
    if tail >= 2 { h ^= UInt32(data[whole + 1]) << 8 }
    if tail >= 1 {
        h ^= UInt32(data[whole])
        h = h &* m
    }
    h ^= h >> 13
    h = h &* m
    h ^= h >> 15
    return Int(h & 0x7fff_ffff) % partitions
}
