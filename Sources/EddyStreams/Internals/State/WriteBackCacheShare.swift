import EddyKafka

/// One stream thread's part of the write-back cache budget (`MemoryBudget`): its tasks'
/// stores and combiners together may hold `bytes` (by their own estimate,
/// `AggregateTable.bytes`), and no store more than `maxEntries` groups
/// (`state.cache_max_entries`, an extra limit). Over either, the thread commits at once
/// and then drops the entries that commit did not touch (RocksDB has them). Owned by the
/// stream thread.
final class WriteBackCacheShare {
    let bytes: Int
    let maxEntries: Int
    /// Where the thread reports what its caches hold (summed over threads).
    private let metrics: StreamsMetrics
    private var reported = 0

    init(bytes: Int, maxEntries: Int, metrics: StreamsMetrics) {
        self.bytes = bytes
        self.maxEntries = maxEntries
        self.metrics = metrics
    }

    deinit { metrics.writeBackCacheBytes.subtract(reported, ordering: .relaxed) }

    /// Whether the caches must be committed now. Once per batch: a sum over the tables.
    func isFull(_ tasks: Dictionary<TopicPartition, StreamTask>.Values) -> Bool {
        let (used, overEntries) = usage(tasks)
        metrics.writeBackCacheBytes.add(used - reported, ordering: .relaxed)
        reported = used
        return overEntries || used >= bytes
    }

    /// The bytes the tables hold, and whether one is at the entry limit.
    private func usage(_ tasks: Dictionary<TopicPartition, StreamTask>.Values) -> (bytes: Int, overEntries: Bool) {
        var used = 0, overEntries = false
        for task in tasks {
            for (store, _) in task.stores {
                used += store.bytes
                overEntries = overEntries || store.entryCount >= maxEntries
            }
            for case let combiner as CombinerOutput in task.outputs {
                used += combiner.table.bytes
                overEntries = overEntries || combiner.table.entryCount >= maxEntries
            }
        }
        return (used, overEntries)
    }

    /// Evicts the clean entries of every store when over the share (all stores) or of a
    /// store over the entry limit. Call at commit, once the previous tail is written and
    /// before this commit's entries are marked clean (`AggregateTable.evictClean`).
    func evictIfOver(_ tasks: Dictionary<TopicPartition, StreamTask>.Values) {
        let used = usage(tasks).bytes
        for task in tasks {
            for (store, _) in task.stores where used >= bytes || store.entryCount >= maxEntries { store.evictClean() }
        }
    }
}
