import EddyState
import Foundation

/// A changelogged key-value store with a write-back cache over its own RocksDB column
/// family (Kafka Streams' `ChangeLoggingKeyValueBytesStore` over a caching RocksDB store):
/// get, put, delete and ordered range scans; writes touch memory only until the commit,
/// which sends the last value of each changed key — or a tombstone for a deleted one — to
/// the changelog once, however often it changed. Owned by its task's stream thread.
final class KeyValueStore: StateStore {
    let name: String
    let columnFamily: ColumnFamily?
    private let database: StateDatabase

    private struct Entry {
        /// nil: the key has no value (deleted, or known to be absent).
        var value: [UInt8]?
        var dirty: Bool
    }
    private var cache: [GroupKey: Entry] = [:]
    /// Changed keys in the order of their first change since the last commit.
    private var changed: [GroupKey] = []
    /// Every stored key is in `cache` (the family was empty when opened, nothing was evicted
    /// since): a miss needs no RocksDB read.
    private var memoryIsComplete: Bool
    private(set) var bytes = 0

    init(name: String, columnFamily: ColumnFamily, database: StateDatabase) {
        self.name = name
        self.columnFamily = columnFamily
        self.database = database
        memoryIsComplete = database.isEmpty(columnFamily)
    }

    var entryCount: Int { cache.count }
    var hasChanges: Bool { !changed.isEmpty }

    func get(_ key: [UInt8]) throws -> [UInt8]? {
        let k = GroupKey(bytes: key)
        if let entry = cache[k] { return entry.value }
        guard !memoryIsComplete, let columnFamily else { return nil }
        let stored = try database.get(columnFamily, key: key)
        cache[k] = Entry(value: stored, dirty: false)
        bytes += Self.entryOverhead + key.count + (stored?.count ?? 0)
        return stored
    }

    /// Sets `key` to `value`, which must not be empty: restore reads an empty changelog
    /// value as a delete, as it reads a tombstone.
    func put(_ key: [UInt8], _ value: [UInt8]) {
        precondition(!value.isEmpty, "store \(name): empty values are deletes")
        set(key, value)
    }

    /// Deletes `key`: the commit writes a tombstone to the changelog and deletes it in RocksDB.
    func delete(_ key: [UInt8]) { set(key, nil) }

    private func set(_ key: [UInt8], _ value: [UInt8]?) {
        let k = GroupKey(bytes: key)
        let old = cache.updateValue(Entry(value: value, dirty: true), forKey: k)
        bytes += (value?.count ?? 0) - (old?.value?.count ?? 0) + (old == nil ? Self.entryOverhead + key.count : 0)
        if old?.dirty != true { changed.append(k) }
    }

    /// The entries with `start ≤ key < end` (end nil: to the last key), in key order: the
    /// cache over RocksDB. Costs the range in RocksDB plus a pass over the cache, so it is
    /// for per-timer and per-commit work, not per record.
    func range(from start: [UInt8], to end: [UInt8]?) -> [(key: [UInt8], value: [UInt8])] {
        func inRange(_ key: [UInt8]) -> Bool {
            !key.lexicographicallyPrecedes(start) && (end.map { key.lexicographicallyPrecedes($0) } ?? true)
        }
        var merged: [[UInt8]: [UInt8]] = [:]
        if !memoryIsComplete, let columnFamily {
            database.forEach(columnFamily, from: start) { key, value in
                let key = Array(key)
                guard inRange(key) else { return false }
                merged[key] = Array(value)
                return true
            }
        }
        for (k, entry) in cache where inRange(k.bytes) { merged[k.bytes] = entry.value }
        return merged.map { (key: $0.key, value: $0.value) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }

    func forEachChange(_ body: (_ key: [UInt8], _ value: [UInt8]?) throws -> Void) rethrows {
        for k in changed { try body(k.bytes, cache[k]!.value) }
    }

    /// The keys changed since the last commit, in the order of their first change.
    var changedKeys: [[UInt8]] { changed.map(\.bytes) }

    func writeChanges(to batch: StateWriteBatch) {
        guard let columnFamily else { return }
        for k in changed {
            if let value = cache[k]!.value { batch.put(columnFamily, key: k.bytes, value: value) } else { batch.delete(columnFamily, key: k.bytes) }
        }
    }

    func markClean() {
        for k in changed { cache[k]!.dirty = false }
        changed.removeAll(keepingCapacity: true)
    }

    func evictClean() {
        guard changed.count < cache.count else { return }
        cache = cache.filter { $0.value.dirty }
        bytes = cache.reduce(0) { $0 + Self.entryOverhead + $1.key.bytes.count + ($1.value.value?.count ?? 0) }
        memoryIsComplete = false
    }

    /// Heap bytes per entry besides its key and value: the dictionary slot at a 3/4 load
    /// factor, two array headers and malloc's rounding (as `AggregateTable.entryOverhead`).
    static let entryOverhead = 128
}
