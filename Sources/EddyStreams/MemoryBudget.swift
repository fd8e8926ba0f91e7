/// How `state.memory_mb` is spent: one budget for everything in the process that grows
/// with load, split once, here.
///
/// | part | share | set as |
/// |---|---|---|
/// | RocksDB block cache, index and filter blocks included | 1/4 | LRU cache capacity |
/// | RocksDB memtables, all column families | 1/8 | `db_write_buffer_size` |
/// | write-back caches of the stream threads | 1/4 | `WriteBackCacheShare`, split evenly between threads |
/// | the commit in flight: its Redis view and WriteBatch (about the size of the dirty part of the caches) | 1/4 | room left, not a setting |
/// | librdkafka's consumer pre-fetch queues | 1/16 | `queued.max.messages.kbytes` per stream thread |
/// | librdkafka's producer queues | 1/16 | `queue.buffering.max.kbytes` (at least `message.max.bytes`: `StreamProducer`) / `.messages` per stream thread |
///
/// What the budget does not cover is the fixed overhead: code and libraries, thread stacks,
/// the Swift, NIO and HTTP runtimes, librdkafka's and RocksDB's own threads and buffers,
/// and malloc's free lists (README, "Memory").
public struct MemoryBudget: Equatable, Sendable {
    public let bytes: Int
    public let threads: Int

    public init(megabytes: Int, threads: Int) {
        bytes = megabytes << 20
        self.threads = max(threads, 1)
    }

    /// RocksDB's part (block cache and memtables), which `StateDatabase` splits 2:1.
    public var rocksDBBytes: Int { bytes / 4 + bytes / 8 }
    public var writeBackCacheBytesPerThread: Int { bytes / 4 / threads }
    public var consumerQueueBytesPerThread: Int { bytes / 16 / threads }
    public var producerQueueBytesPerThread: Int { bytes / 16 / threads }

    /// A stream thread's consumer properties: the pre-fetch queue sized from the budget
    /// unless `properties` (kafka.properties) already sets it. librdkafka counts only the
    /// records' bytes against the limit, but each queued record also holds an op and its
    /// part of a fetch buffer (heaptrack at the peak of item-popularity over 2M events,
    /// default 64 MB limit: 37 MB of ops, 18 MB of fetch buffers), so the limit is a third
    /// of the share. `fetch.max.bytes` follows it down (librdkafka caps it at the limit).
    public func consumerProperties(_ properties: [String: String]) -> [String: String] {
        var p = properties
        if p["queued.max.messages.kbytes"] == nil {
            p["queued.max.messages.kbytes"] = String(max(consumerQueueBytesPerThread / 3 / 1024, 1024))
        }
        return p
    }

    /// A stream thread's producer properties: the queue of records not yet acknowledged,
    /// sized from the budget unless `properties` sets it. Half the share for the records'
    /// bytes, half for librdkafka's ~256 bytes of bookkeeping per record (by count).
    public func producerProperties(_ properties: [String: String]) -> [String: String] {
        var p = properties
        if p["queue.buffering.max.kbytes"] == nil {
            p["queue.buffering.max.kbytes"] = String(max(producerQueueBytesPerThread / 2 / 1024, 1024))
        }
        if p["queue.buffering.max.messages"] == nil {
            p["queue.buffering.max.messages"] = String(max(producerQueueBytesPerThread / 2 / 256, 4096))
        }
        return p
    }
}

extension RuntimeConfig {
    /// `state.memory_mb`, split between RocksDB, the stream threads' caches and librdkafka.
    public var memoryBudget: MemoryBudget { MemoryBudget(megabytes: memoryBudgetMB, threads: threads) }
}
