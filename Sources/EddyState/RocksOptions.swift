import CRocksDB

/// The RocksDB option objects a `StateDatabase` opens with and keeps for its lifetime,
/// sized from the process's memory budget. Created and destroyed together: whoever makes
/// them calls `destroy()` once, also when opening the database fails.
struct RocksOptions {
    let options: OpaquePointer
    let tableOptions: OpaquePointer
    let cache: OpaquePointer
    let readOptions: OpaquePointer
    let writeOptions: OpaquePointer

    init(memoryBudgetBytes: Int) {
        options = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_increase_parallelism(options, 2)
        rocksdb_options_set_compression(options, Int32(rocksdb_lz4_compression))
        // Half the budget caches blocks, a quarter buffers writes across all column families.
        cache = rocksdb_cache_create_lru(max(memoryBudgetBytes / 2, 8 << 20))
        tableOptions = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_block_cache(tableOptions, cache)
        rocksdb_block_based_options_set_filter_policy(tableOptions, rocksdb_filterpolicy_create_bloom(10))
        rocksdb_options_set_block_based_table_factory(options, tableOptions)
        rocksdb_options_set_db_write_buffer_size(options, max(memoryBudgetBytes / 4, 8 << 20))
        rocksdb_options_set_write_buffer_size(options, min(max(memoryBudgetBytes / 16, 4 << 20), 64 << 20))
        readOptions = rocksdb_readoptions_create()
        writeOptions = rocksdb_writeoptions_create()
    }

    func destroy() {
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_options_destroy(options)
        rocksdb_block_based_options_destroy(tableOptions)
        rocksdb_cache_destroy(cache)
    }
}
