import EddyState

/// One aggregate's state for one task: a write-back cache in front of its RocksDB column
/// family (DESIGN.md §3). Updates touch memory only; at commit the last value of each dirty
/// group goes into the task's WriteBatch and its Redis view, once per commit however many
/// records hit it. Owned by the task's stream thread.
///
/// Without a column family it is a combiner: the partial aggregates an upstream task
/// gathers between two commits for a repartitioned aggregate, sent downstream at commit.
///
/// Stored value layout (little-endian): count (Int64), then one Float64 per summed field.
/// Stored key: the group values, each as a 4-byte length and its bytes.
final class AggregateTable {
    let spec: CompiledTopology.Aggregate
    let columnFamily: ColumnFamily?
    private let database: StateDatabase?

    /// Group key bytes -> entry index.
    private var index: [GroupKey: Int] = [:]
    private(set) var keys: [[UInt8]] = []
    private(set) var counts: [Int64] = []
    /// `sumsPerEntry` doubles per entry, flattened.
    private(set) var sums: [Double] = []
    private var isDirty: [Bool] = []
    private(set) var dirty: [Int] = []
    let sumsPerEntry: Int

    /// True while every group the store holds is in `index` (the store was empty when
    /// opened and nothing was evicted since): a miss then needs no RocksDB read.
    private var memoryIsComplete: Bool

    init(spec: CompiledTopology.Aggregate, columnFamily: ColumnFamily, database: StateDatabase) {
        self.spec = spec
        self.columnFamily = columnFamily
        self.database = database
        sumsPerEntry = spec.sumsPerEntry
        memoryIsComplete = database.isEmpty(columnFamily)
    }

    /// A combiner: memory only.
    init(combining spec: CompiledTopology.Aggregate) {
        self.spec = spec
        columnFamily = nil
        database = nil
        sumsPerEntry = spec.sumsPerEntry
        memoryIsComplete = true
    }

    var entryCount: Int { keys.count }

    /// The entry for `key`, loaded from RocksDB or created on first sight; marks it dirty.
    @inline(__always)
    func entry(for key: [UInt8]) throws -> Int {
        let e: Int
        if let found = index[GroupKey(bytes: key)] {
            e = found
        } else {
            e = keys.count
            keys.append(key)
            index[GroupKey(bytes: key)] = e
            counts.append(0)
            sums.append(contentsOf: repeatElement(0, count: sumsPerEntry))
            isDirty.append(false)
            if !memoryIsComplete, let database, let columnFamily, let stored = try database.get(columnFamily, key: key) {
                stored.withUnsafeBytes { merge($0, into: e) }
            }
        }
        if !isDirty[e] {
            isDirty[e] = true
            dirty.append(e)
        }
        return e
    }

    @inline(__always) func add(count: Int64, to e: Int) { counts[e] &+= count }
    @inline(__always) func add(_ value: Double, sum j: Int, to e: Int) { sums[e * sumsPerEntry + j] += value }
    @inline(__always) func sum(_ j: Int, of e: Int) -> Double { sums[e * sumsPerEntry + j] }

    /// The i-th group value of entry `e`, decoded from the length-prefixed key.
    func groupValue(_ i: Int, of e: Int, into out: inout [UInt8]) {
        keys[e].withUnsafeBufferPointer { k in
            var p = 0
            for _ in 0..<i { p += 4 + Int(readUInt32(k, p)) }
            let n = Int(readUInt32(k, p))
            out.append(contentsOf: k[(p + 4)..<(p + 4 + n)])
        }
    }

    /// Each dirty entry's key and stored value (the changelog record and the RocksDB put).
    func forEachDirty(_ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void) rethrows {
        var value = [UInt8](repeating: 0, count: 8 * (1 + sumsPerEntry))
        for e in dirty {
            value.withUnsafeMutableBytes { v in
                v.storeBytes(of: UInt64(bitPattern: counts[e]).littleEndian, toByteOffset: 0, as: UInt64.self)
                for j in 0..<sumsPerEntry {
                    v.storeBytes(of: sums[e * sumsPerEntry + j].bitPattern.littleEndian, toByteOffset: 8 * (1 + j), as: UInt64.self)
                }
            }
            try body(keys[e], value)
        }
    }

    /// Puts every dirty entry into `batch`.
    func writeDirty(to batch: StateWriteBatch) {
        guard let columnFamily else { return }
        forEachDirty { batch.put(columnFamily, key: $0, value: $1) }
    }

    /// Adds an encoded value (a stored value, or a combiner's partial) to entry `e`.
    func merge(_ value: UnsafeRawBufferPointer, into e: Int) {
        guard value.count == 8 * (1 + sumsPerEntry) else { return }
        counts[e] &+= Int64(bitPattern: UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 0, as: UInt64.self)))
        for j in 0..<sumsPerEntry {
            sums[e * sumsPerEntry + j] += Double(bitPattern: UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 8 * (1 + j), as: UInt64.self)))
        }
    }

    /// Forgets every entry (a combiner, once its partials are committed downstream).
    func removeAll() {
        index.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
        counts.removeAll(keepingCapacity: true)
        sums.removeAll(keepingCapacity: true)
        isDirty.removeAll(keepingCapacity: true)
        dirty.removeAll(keepingCapacity: true)
    }

    /// Called once the commit is durable.
    func markClean() {
        for e in dirty { isDirty[e] = false }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Drops the (clean) in-memory entries when over `limit`; RocksDB still has them.
    func evictIfOver(_ limit: Int) {
        guard columnFamily != nil, keys.count > limit, dirty.isEmpty else { return }
        removeAll()
        memoryIsComplete = false
    }
}

@inline(__always)
private func readUInt32(_ b: UnsafeBufferPointer<UInt8>, _ p: Int) -> UInt32 {
    UInt32(b[p]) | UInt32(b[p + 1]) << 8 | UInt32(b[p + 2]) << 16 | UInt32(b[p + 3]) << 24
}

@inline(__always)
func appendLengthPrefixed(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
    let n = UInt32(bytes.count)
    out.append(UInt8(n & 0xff)); out.append(UInt8(n >> 8 & 0xff)); out.append(UInt8(n >> 16 & 0xff)); out.append(UInt8(n >> 24))
    out.append(contentsOf: bytes)
}

/// A group key in the write-back cache. Hashes its bytes in one call: `[UInt8]`'s own
/// hashing feeds the hasher one byte at a time (perf: 9% of the thread's time).
struct GroupKey: Hashable {
    let bytes: [UInt8]

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
