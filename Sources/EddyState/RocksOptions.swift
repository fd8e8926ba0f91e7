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

    /// `memoryBudgetBytes`: what RocksDB may hold in memory, two thirds block cache and one
    /// third memtables (`MemoryBudget` decides RocksDB's part of `state.memory_mb`).
    init(memoryBudgetBytes: Int) {
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
    }

    func destroy() {
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_options_destroy(options)
        rocksdb_block_based_options_destroy(tableOptions)
        rocksdb_cache_destroy(cache)
    }
}
