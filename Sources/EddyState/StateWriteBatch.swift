import CRocksDB

/// A RocksDB WriteBatch: puts to several column families applied as one atomic write.
/// Owned by one thread.
public final class StateWriteBatch {
    let handle: OpaquePointer

    public init() { handle = rocksdb_writebatch_create() }
    deinit { rocksdb_writebatch_destroy(handle) }

    public var count: Int { Int(rocksdb_writebatch_count(handle)) }

    public func put(_ cf: ColumnFamily, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        rocksdb_writebatch_put_cf(handle, cf.handle,
                                  key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count,
                                  value.baseAddress?.assumingMemoryBound(to: CChar.self), value.count)
    }

    public func put(_ cf: ColumnFamily, key: [UInt8], value: [UInt8]) {
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in put(cf, key: k, value: v) } }
    }

    public func delete(_ cf: ColumnFamily, key: UnsafeRawBufferPointer) {
        rocksdb_writebatch_delete_cf(handle, cf.handle, key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count)
    }

    public func delete(_ cf: ColumnFamily, key: [UInt8]) {
        key.withUnsafeBytes { delete(cf, key: $0) }
    }

    public func clear() { rocksdb_writebatch_clear(handle) }
}
