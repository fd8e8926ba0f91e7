/// Which partition of a repartition topic a group key goes to, written out plainly for
/// references: FNV-1a (64-bit) of the key's bytes — each group value as a 4-byte
/// little-endian length and its UTF-8 bytes — modulo the partition count.
public func repartitionPartition(of values: [String], partitions: Int) -> Int {
    var bytes: [UInt8] = []
    for v in values {
        let n = UInt32(v.utf8.count)
        bytes += [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + Array(v.utf8)
    }
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
    return Int(hash % UInt64(partitions))
}
