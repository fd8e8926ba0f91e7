import EddyState
import Foundation

/// One aggregate's state for one task: a write-back cache in front of its RocksDB column
/// family (DESIGN.md §3), laid out in columns (a count, numbers, recent values per group) so
/// the per-record update is a few array writes. What the columns mean — how a record
/// updates them, how two values merge, what they render as — is the aggregate's
/// `AggregateFunction` (one file per aggregate operator). Updates touch memory only; at commit the last value of each dirty
/// group goes into the task's WriteBatch and its Redis view, once per commit however many
/// records hit it. Owned by the task's stream thread.
///
/// Without a column family it is a combiner: the partial aggregates an upstream task
/// gathers between two commits for a repartitioned aggregate, sent downstream at commit.
///
/// Stored value layout (little-endian): count (Int64), then `sumsPerEntry` 8-byte numbers
/// (Float64s, or the two halves of a `FixedPointSum`: a sum's total, a decay's time and
/// frame sums), then for a recent-values aggregate its values, oldest first, each as its
/// event time (Int64), a 4-byte length and its bytes.
/// Stored key: the group values, each as a 4-byte length and its bytes.
final class AggregateTable: StateStore {
    let spec: CompiledTopology.Aggregate
    let function: any AggregateFunction
    let columnFamily: ColumnFamily?
    private let database: StateDatabase?

    /// Group key bytes -> entry index.
    private var index: [GroupKey: Int] = [:]
    private(set) var keys: [[UInt8]] = []
    private(set) var counts: [Int64] = []
    /// `sumsPerEntry` doubles per entry, flattened.
    private(set) var sums: [Double] = []
    /// Per entry, for a recent-values aggregate.
    private(set) var recent: [RecentValues] = []
    private var isDirty: [Bool] = []
    private(set) var dirty: [Int] = []
    let sumsPerEntry: Int
    /// Values kept per entry by a recent-values aggregate; 0 otherwise.
    let recentLimit: Int
    /// Whether a recent-values aggregate keeps each value once.
    let recentDistinct: Bool

    /// True while every group the store holds is in `index` (the store was empty when
    /// opened and nothing was evicted since): a miss then needs no RocksDB read.
    private var memoryIsComplete: Bool

    /// Approximate heap bytes the entries hold, kept up to date per new entry and per
    /// recent value (a few integer operations, never a scan): what the write-back cache's
    /// share of `state.memory_mb` is checked against (`WriteBackCacheShare`).
    private(set) var bytes = 0

    convenience init(spec: CompiledTopology.Aggregate, columnFamily: ColumnFamily, database: StateDatabase) {
        self.init(spec, columnFamily, database, memoryIsComplete: database.isEmpty(columnFamily))
    }

    /// A combiner: memory only.
    convenience init(combining spec: CompiledTopology.Aggregate) {
        self.init(spec, nil, nil, memoryIsComplete: true)
    }

    private init(_ spec: CompiledTopology.Aggregate, _ columnFamily: ColumnFamily?, _ database: StateDatabase?, memoryIsComplete: Bool) {
        self.spec = spec
        self.columnFamily = columnFamily
        self.database = database
        self.memoryIsComplete = memoryIsComplete
        function = spec.function.make(spec)
        sumsPerEntry = function.sumsPerEntry
        recentLimit = function.recentLimit
        recentDistinct = function.recentDistinct
    }

    var entryCount: Int { keys.count }

    /// Whether a key is a group's (not bookkeeping: a top K's epoch entries and kept values,
    /// a state TTL's touch rows, all under FF FF FF FB to FF, which no 4-byte length of a
    /// group's first value starts with).
    @inline(__always)
    static func isGroupKey(_ key: [UInt8]) -> Bool {
        !(key.count >= 4 && key[0] == 0xFF && key[1] == 0xFF && key[2] == 0xFF && key[3] >= 0xFB)
    }

    /// The entry for `key`, loaded from RocksDB or created on first sight; marks it dirty.
    @inline(__always)
    func entry(for key: [UInt8]) throws -> Int {
        try entry(for: key, stored: nil, readsStore: true)
    }

    /// The entry for `key`, marked dirty; when memory lacks it, its value is `stored` (what
    /// the caller read from RocksDB, or nil: nothing, or nothing worth keeping — the entry
    /// is about to be cleared) instead of a RocksDB read.
    func entry(for key: [UInt8], stored: [UInt8]?) -> Int {
        try! entry(for: key, stored: stored, readsStore: false)  // without a read nothing throws
    }

    @inline(__always)
    private func entry(for key: [UInt8], stored: [UInt8]?, readsStore: Bool) throws -> Int {
        let e: Int
        if let found = index[GroupKey(bytes: key)] {
            e = found
        } else {
            e = keys.count
            // A copy of exactly its size: the caller's buffer keeps its capacity, and a key
            // stored in it would keep that capacity too (heaptrack: 256 bytes per 14-byte
            // key, 80 MB of 106 MB of Swift heap in item-popularity over 2M events).
            let key = [UInt8](unsafeUninitializedCapacity: key.count) { buffer, count in
                count = buffer.initialize(fromContentsOf: key)
            }
            keys.append(key)
            index[GroupKey(bytes: key)] = e
            bytes += Self.entryOverhead + key.count + 8 * sumsPerEntry
            counts.append(0)
            sums.append(contentsOf: repeatElement(0, count: sumsPerEntry))
            if recentLimit > 0 { recent.append(RecentValues()) }
            isDirty.append(false)
            if let stored {
                stored.withUnsafeBytes { merge($0, into: e) }
            } else if readsStore, !memoryIsComplete, let database, let columnFamily, let stored = try database.get(columnFamily, key: key) {
                stored.withUnsafeBytes { merge($0, into: e) }
            }
        }
        touch(e)
        return e
    }

    /// Marks entry `e` dirty: the commit writes it (and renders it).
    @inline(__always)
    func touch(_ e: Int) {
        if !isDirty[e] {
            isDirty[e] = true
            dirty.append(e)
        }
    }

    /// Empties entry `e` and marks it dirty: the commit deletes it from the store (an entry
    /// of count 0 and no sums is a tombstone) and removes it from Redis.
    func clear(_ e: Int) {
        counts[e] = 0
        for j in 0..<sumsPerEntry { sums[e * sumsPerEntry + j] = 0 }
        if recentLimit > 0 { recent[e] = RecentValues() }
        touch(e)
    }

    /// Whether entry `e` holds nothing: what the store keeps no row for.
    func isEmpty(_ e: Int) -> Bool {
        guard counts[e] == 0 else { return false }
        for j in 0..<sumsPerEntry where sums[e * sumsPerEntry + j].bitPattern != 0 { return false }
        return recentLimit == 0 || recent[e].count == 0
    }

    /// The encoded value of `key` (memory first, then RocksDB) without loading it; nil when
    /// the group holds nothing.
    func storedValue(for key: [UInt8]) throws -> [UInt8]? {
        if let e = index[GroupKey(bytes: key)] { return isEmpty(e) ? nil : encodedValue(of: e) }
        guard !memoryIsComplete, let database, let columnFamily else { return nil }
        return try database.get(columnFamily, key: key)
    }

    /// Each row RocksDB holds from `start` on, in key order, while `body` returns true (committed rows:
    /// memory may hold newer values of them, and rows not yet written).
    func forEachStoredRow(from start: [UInt8]? = nil, _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool) {
        guard !memoryIsComplete, let database, let columnFamily else { return }
        database.forEach(columnFamily, from: start, body)
    }

    /// Entry `e` in the stored layout (a partial's, too).
    func encodedValue(of e: Int) -> [UInt8] {
        var value = [UInt8](repeating: 0, count: 8 * (1 + sumsPerEntry))
        encode(e, into: &value)
        return value
    }

    private func encode(_ e: Int, into value: inout [UInt8]) {
        let fixed = 8 * (1 + sumsPerEntry)
        if recentLimit > 0 {
            value.removeSubrange(fixed...)
            value.append(contentsOf: recent[e].encoded)
        }
        value.withUnsafeMutableBytes { v in
            v.storeBytes(of: UInt64(bitPattern: counts[e]).littleEndian, toByteOffset: 0, as: UInt64.self)
            for j in 0..<sumsPerEntry {
                v.storeBytes(of: sums[e * sumsPerEntry + j].bitPattern.littleEndian, toByteOffset: 8 * (1 + j), as: UInt64.self)
            }
        }
    }

    @inline(__always) func add(count: Int64, to e: Int) { counts[e] &+= count }
    @inline(__always) func sum(_ j: Int, of e: Int) -> Double { sums[e * sumsPerEntry + j] }

    /// The `FixedPointSum` in numbers j and j+1 of entry `e` (its low and high 64 bits, as
    /// the bit patterns of the two slots: they are only ever copied, never computed with).
    @inline(__always)
    func fixed(_ j: Int, of e: Int) -> FixedPointSum {
        let i = e * sumsPerEntry + j
        return FixedPointSum(low: sums[i].bitPattern, high: sums[i + 1].bitPattern)
    }

    @inline(__always)
    func set(_ value: FixedPointSum, fixed j: Int, of e: Int) {
        let i = e * sumsPerEntry + j
        sums[i] = Double(bitPattern: value.low)
        sums[i + 1] = Double(bitPattern: value.high)
    }

    @inline(__always)
    func add(_ term: FixedPointSum, fixed j: Int, to e: Int) {
        var sum = fixed(j, of: e)
        sum += term
        set(sum, fixed: j, of: e)
    }

    /// Adds one value at event time `time` to a recent-values entry.
    @inline(__always)
    func addRecent(_ value: UnsafeBufferPointer<UInt8>, at time: Int64, to e: Int) {
        let before = recent[e].allocatedBytes
        recent[e].insert(value, at: time, keeping: recentLimit, distinct: recentDistinct)
        bytes += recent[e].allocatedBytes - before
        counts[e] &+= 1
    }

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
            encode(e, into: &value)
            try body(keys[e], value)
        }
    }

    /// Puts every dirty entry into `batch`, and deletes the empty ones.
    func writeDirty(to batch: StateWriteBatch) {
        guard let columnFamily else { return }
        forEachChange { key, value in
            if let value { batch.put(columnFamily, key: key, value: value) } else { batch.delete(columnFamily, key: key) }
        }
    }

    /// Adds an encoded value (a stored value, or a combiner's partial) to entry `e`;
    /// ignores a value of the wrong size. A function whose layout changed also takes its
    /// earlier one (`legacySumsPerEntry`: state and partials written by an older Eddy).
    func merge(_ value: UnsafeRawBufferPointer, into e: Int) {
        let fixed = 8 * (1 + sumsPerEntry)
        let legacy = function.legacySumsPerEntry.map { 8 * (1 + $0) }
        guard value.count == fixed || value.count == legacy || recentLimit > 0 && value.count > fixed else { return }
        function.merge(value, into: e, of: self)
    }

    /// The count of an encoded value.
    static func count(in value: UnsafeRawBufferPointer) -> Int64 {
        Int64(bitPattern: UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 0, as: UInt64.self)))
    }

    /// The j-th number after the count of an encoded value.
    static func number(_ j: Int, in value: UnsafeRawBufferPointer) -> Double {
        Double(bitPattern: word(j, in: value))
    }

    /// The `FixedPointSum` in numbers j and j+1 of an encoded value.
    static func fixed(_ j: Int, in value: UnsafeRawBufferPointer) -> FixedPointSum {
        FixedPointSum(low: word(j, in: value), high: word(j + 1, in: value))
    }

    private static func word(_ j: Int, in value: UnsafeRawBufferPointer) -> UInt64 {
        UInt64(littleEndian: value.loadUnaligned(fromByteOffset: 8 * (1 + j), as: UInt64.self))
    }

    /// Merges the recent values of an encoded value into entry `e`.
    func mergeRecent(_ value: UnsafeRawBufferPointer, into e: Int) {
        let before = recent[e].allocatedBytes
        recent[e].merge(UnsafeRawBufferPointer(rebasing: value[(8 * (1 + sumsPerEntry))...]), keeping: recentLimit, distinct: recentDistinct)
        bytes += recent[e].allocatedBytes - before
    }

    @inline(__always) func set(_ value: Double, sum j: Int, of e: Int) { sums[e * sumsPerEntry + j] = value }

    /// Forgets every entry (a combiner, once its partials are committed downstream).
    func removeAll() {
        index.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
        counts.removeAll(keepingCapacity: true)
        sums.removeAll(keepingCapacity: true)
        recent.removeAll(keepingCapacity: true)
        isDirty.removeAll(keepingCapacity: true)
        dirty.removeAll(keepingCapacity: true)
        bytes = 0
    }

    /// Loads every stored entry and marks every entry dirty, so the commit being written
    /// renders the table's whole state (re-materializing Redis). Call once the commit's
    /// changelog records are sent: the values are committed ones, and writing them to
    /// RocksDB again changes nothing.
    func markAllDirty() throws {
        if !memoryIsComplete, let database, let columnFamily {
            var stored: [[UInt8]] = []
            database.forEach(columnFamily) { key, _ in
                stored.append(Array(key))
                return true
            }
            for key in stored { _ = try entry(for: key) }
        }
        for e in 0..<keys.count where !isDirty[e] {
            isDirty[e] = true
            dirty.append(e)
        }
    }

    /// Called once the commit is durable.
    func markClean() {
        for e in dirty { isDirty[e] = false }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Drops the entries that are not dirty: call it once RocksDB has them (the previous
    /// commit's tail is written) and before this commit marks its entries clean. The dirty
    /// ones — the groups touched since the last commit — stay, with their new indexes.
    /// O(entries), so only when the cache is over its share. A combiner is emptied at every
    /// commit instead.
    func evictClean() {
        guard columnFamily != nil, dirty.count < keys.count else { return }
        let kept = dirty
        var newKeys: [[UInt8]] = [], newCounts: [Int64] = [], newSums: [Double] = [], newRecent: [RecentValues] = []
        newKeys.reserveCapacity(kept.count)
        newCounts.reserveCapacity(kept.count)
        newSums.reserveCapacity(kept.count * sumsPerEntry)
        if recentLimit > 0 { newRecent.reserveCapacity(kept.count) }
        var newIndex: [GroupKey: Int] = [:]
        newIndex.reserveCapacity(kept.count)
        var newBytes = 0
        for e in kept {
            newIndex[GroupKey(bytes: keys[e])] = newKeys.count
            newKeys.append(keys[e])
            newCounts.append(counts[e])
            newSums.append(contentsOf: sums[(e * sumsPerEntry)..<((e + 1) * sumsPerEntry)])
            newBytes += Self.entryOverhead + keys[e].count + 8 * sumsPerEntry
            if recentLimit > 0 {
                newRecent.append(recent[e])
                newBytes += recent[e].allocatedBytes
            }
        }
        index = newIndex
        keys = newKeys
        counts = newCounts
        sums = newSums
        recent = newRecent
        isDirty = [Bool](repeating: true, count: kept.count)
        dirty = Array(0..<kept.count)
        bytes = newBytes
        memoryIsComplete = false
    }

    // MARK: StateStore

    var hasChanges: Bool { !dirty.isEmpty }

    /// Each dirty entry's row; an empty entry's is a tombstone (a group whose every record
    /// was taken back, or one a top K pruned).
    func forEachChange(_ body: (_ key: [UInt8], _ value: [UInt8]?) throws -> Void) rethrows {
        var value = [UInt8](repeating: 0, count: 8 * (1 + sumsPerEntry))
        for e in dirty {
            if isEmpty(e) {
                try body(keys[e], nil)
            } else {
                encode(e, into: &value)
                try body(keys[e], value)
            }
        }
    }

    func writeChanges(to batch: StateWriteBatch) { writeDirty(to: batch) }

    /// Heap bytes per entry besides its key and sums: the index slot (key, value and
    /// metadata at a 3/4 load factor), one element in each column array, the key's array
    /// header and malloc's rounding, and the slack of arrays grown by doubling.
    /// Checked by `AggregateTableTests.testByteEstimateFollowsTheHeap`.
    static let entryOverhead = 160
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
