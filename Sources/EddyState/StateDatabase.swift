import CRocksDB
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One RocksDB database per process, holding one column family per (task, store).
///
/// Sharing one database gives every store one block cache and one write-buffer budget
/// (`db_write_buffer_size` is RocksDB's write buffer manager for the whole DB), so the
/// process stays under `memoryBudgetBytes` however many tasks it runs, and lets one
/// WriteBatch update several stores and their input offsets atomically.
///
/// `@unchecked Sendable`: RocksDB's `rocksdb_t` is thread-safe for reads, writes and column
/// family creation; the only Swift state, the handle map, sits behind a Mutex.
public final class StateDatabase: @unchecked Sendable {
    private let db: OpaquePointer
    private let options: OpaquePointer
    private let tableOptions: OpaquePointer
    private let cache: OpaquePointer
    private let readOptions: OpaquePointer
    private let writeOptions: OpaquePointer
    private let families: Mutex<[String: ColumnFamily]>
    /// Guarded by the `families` lock.
    private nonisolated(unsafe) var closed = false
    public let path: String

    /// `memoryBudgetBytes`: what RocksDB may hold in memory, two thirds block cache and one
    /// third memtables (`MemoryBudget` decides RocksDB's part of `state.memory_mb`).
    public init(path: String, memoryBudgetBytes: Int) throws {
        self.path = path
        options = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_increase_parallelism(options, 2)
        rocksdb_options_set_compression(options, Int32(rocksdb_lz4_compression))
        cache = rocksdb_cache_create_lru(max(memoryBudgetBytes * 2 / 3, 4 << 20))
        tableOptions = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_block_cache(tableOptions, cache)
        rocksdb_block_based_options_set_filter_policy(tableOptions, rocksdb_filterpolicy_create_bloom(10))
        // Index and filter blocks in the block cache too: otherwise every open table file
        // holds its own outside any limit, and they grow with the data.
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(tableOptions, 1)
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(tableOptions, 1)
        rocksdb_options_set_block_based_table_factory(options, tableOptions)
        // The write buffer manager's limit for the memtables of every column family.
        let writeBuffers = max(memoryBudgetBytes / 3, 4 << 20)
        rocksdb_options_set_db_write_buffer_size(options, writeBuffers)
        rocksdb_options_set_write_buffer_size(options, min(max(writeBuffers / 4, 1 << 20), 64 << 20))
        readOptions = rocksdb_readoptions_create()
        writeOptions = rocksdb_writeoptions_create()

        // Every existing column family must be opened with the database.
        var names = ["default"]
        var count = 0
        var err: UnsafeMutablePointer<CChar>?
        let list = rocksdb_list_column_families(options, path, &count, &err)
        if let err {
            free(err)  // a new database has no list yet
        } else if let list, count > 0 {
            names = (0..<count).map { String(cString: list[$0]!) }
        }
        if let list { rocksdb_list_column_families_destroy(list, count) }
        let cfOptions = [OpaquePointer?](repeating: options, count: names.count)
        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        let options = self.options
        let opened = try rocksCall("open RocksDB at \(path)") { errptr in
            let namePtrs: [UnsafePointer<CChar>?] = cNames.map { UnsafePointer($0) }
            return rocksdb_open_column_families(options, path, Int32(names.count), namePtrs,
                                                cfOptions, &handles, errptr)
        }
        guard let opened else { throw StateError("open RocksDB at \(path): no handle") }
        db = opened
        var map: [String: ColumnFamily] = [:]
        for (name, handle) in zip(names, handles) { map[name] = ColumnFamily(name: name, handle: handle!) }
        families = Mutex(map)
    }

    deinit { close() }

    /// Flushes and closes the database. Call it once no thread uses the database any more
    /// (its column families are freed too); later calls do nothing. Closing explicitly
    /// keeps RocksDB's teardown off whichever thread happens to drop the last reference.
    public func close() {
        let wasOpen = families.withLock { map -> Bool in
            guard !closed else { return false }
            closed = true
            for cf in map.values { rocksdb_column_family_handle_destroy(cf.handle) }
            map = [:]
            return true
        }
        guard wasOpen else { return }
        rocksdb_close(db)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_options_destroy(options)
        rocksdb_block_based_options_destroy(tableOptions)
        rocksdb_cache_destroy(cache)
    }

    /// The column family `name`, created if it does not exist yet.
    public func columnFamily(_ name: String) throws -> ColumnFamily {
        try families.withLock { map in
            if let cf = map[name] { return cf }
            let handle = try rocksCall("create column family \(name)") { rocksdb_create_column_family(db, options, name, $0) }
            let cf = ColumnFamily(name: name, handle: handle!)
            map[name] = cf
            return cf
        }
    }

    public var columnFamilyNames: [String] { families.withLock { Array($0.keys) } }

    /// What RocksDB holds in memory now: the block cache's usage and the memtables of
    /// every column family (`rocksdb.cur-size-all-mem-tables`), in bytes.
    public var memoryUsage: (blockCache: Int, memtables: Int) {
        families.withLock { map in
            guard !closed else { return (0, 0) }
            var memtables = 0
            for cf in map.values {
                var value: UInt64 = 0
                if rocksdb_property_int_cf(db, cf.handle, "rocksdb.cur-size-all-mem-tables", &value) == 0 { memtables += Int(value) }
            }
            return (rocksdb_cache_get_usage(cache), memtables)
        }
    }

    public func get(_ cf: ColumnFamily, key: UnsafeRawBufferPointer) throws -> [UInt8]? {
        var length = 0
        let value = try rocksCall("get from \(cf.name)") {
            rocksdb_get_cf(db, readOptions, cf.handle, key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count, &length, $0)
        }
        guard let value else { return nil }
        defer { free(value) }
        return Array(UnsafeRawBufferPointer(start: value, count: length))
    }

    public func get(_ cf: ColumnFamily, key: [UInt8]) throws -> [UInt8]? {
        try key.withUnsafeBytes { try get(cf, key: $0) }
    }

    /// Applies `batch` atomically.
    public func write(_ batch: StateWriteBatch) throws {
        try rocksCall("write batch of \(batch.count)") { rocksdb_write(db, writeOptions, batch.handle, $0) }
    }

    /// Deletes every key of the column family.
    public func removeAll(_ cf: ColumnFamily) throws {
        let batch = StateWriteBatch()
        forEach(cf) { key, _ in
            batch.delete(cf, key: key)
            return true
        }
        try write(batch)
    }

    /// True when the column family holds no key at all.
    public func isEmpty(_ cf: ColumnFamily) -> Bool {
        var empty = true
        forEach(cf) { _, _ in empty = false; return false }
        return empty
    }

    /// Visits every key/value in key order (from the first key ≥ `start`, if given) until
    /// `body` returns false.
    public func forEach(_ cf: ColumnFamily, from start: [UInt8]? = nil, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) {
        let it = rocksdb_create_iterator_cf(db, readOptions, cf.handle)!
        defer { rocksdb_iter_destroy(it) }
        if let start {
            start.withUnsafeBufferPointer { rocksdb_iter_seek(it, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) }
        } else {
            rocksdb_iter_seek_to_first(it)
        }
        while rocksdb_iter_valid(it) != 0 {
            var kl = 0, vl = 0
            let k = rocksdb_iter_key(it, &kl)
            let v = rocksdb_iter_value(it, &vl)
            if !body(UnsafeRawBufferPointer(start: k, count: kl), UnsafeRawBufferPointer(start: v, count: vl)) { return }
            rocksdb_iter_next(it)
        }
    }
}

/// A column family handle; owned and destroyed by its `StateDatabase`.
public final class ColumnFamily: @unchecked Sendable {
    public let name: String
    let handle: OpaquePointer
    init(name: String, handle: OpaquePointer) {
        self.name = name
        self.handle = handle
    }
}
