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
    private let options: RocksOptions
    private let families: Mutex<[String: ColumnFamily]>
    /// Guarded by the `families` lock.
    private nonisolated(unsafe) var closed = false
    public let path: String

    public convenience init(path: String, memoryBudgetBytes: Int) throws {
        let options = RocksOptions(memoryBudgetBytes: memoryBudgetBytes)
        let opened: (db: OpaquePointer, families: [String: ColumnFamily])
        do {
            opened = try Self.open(path: path, options: options.options)
        } catch {
            options.destroy()
            throw error
        }
        self.init(path: path, db: opened.db, options: options, families: opened.families)
    }

    /// Takes ownership of an open database. Nothing here may fail: once every property is
    /// set, a throwing initializer would run `deinit` (and close what its caller frees).
    private init(path: String, db: OpaquePointer, options: RocksOptions, families: [String: ColumnFamily]) {
        self.path = path
        self.db = db
        self.options = options
        self.families = Mutex(families)
    }

    /// Opens the database at `path` with every column family it has.
    private static func open(path: String, options: OpaquePointer) throws -> (db: OpaquePointer, families: [String: ColumnFamily]) {
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
        let opened = try rocksCall("open RocksDB at \(path)") { errptr in
            let namePtrs: [UnsafePointer<CChar>?] = cNames.map { UnsafePointer($0) }
            return rocksdb_open_column_families(options, path, Int32(names.count), namePtrs,
                                                cfOptions, &handles, errptr)
        }
        guard let opened else { throw StateError("open RocksDB at \(path): no handle") }
        var map: [String: ColumnFamily] = [:]
        for (name, handle) in zip(names, handles) { map[name] = ColumnFamily(name: name, handle: handle!) }
        return (opened, map)
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
        options.destroy()
    }

    /// The column family `name`, created if it does not exist yet.
    public func columnFamily(_ name: String) throws -> ColumnFamily {
        try families.withLock { map in
            if let cf = map[name] { return cf }
            let handle = try rocksCall("create column family \(name)") { rocksdb_create_column_family(db, options.options, name, $0) }
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
            return (rocksdb_cache_get_usage(options.cache), memtables)
        }
    }

    public func get(_ cf: ColumnFamily, key: UnsafeRawBufferPointer) throws -> [UInt8]? {
        var length = 0
        let value = try rocksCall("get from \(cf.name)") {
            rocksdb_get_cf(db, options.readOptions, cf.handle, key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count, &length, $0)
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
        try rocksCall("write batch of \(batch.count)") { rocksdb_write(db, options.writeOptions, batch.handle, $0) }
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
        let it = rocksdb_create_iterator_cf(db, options.readOptions, cf.handle)!
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
