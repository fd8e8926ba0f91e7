import EddyState

/// A task's changelogged store, as the task's commit sees it (Kafka Streams' `StateStore`):
/// the changes since the last commit go to its changelog partition in the commit's
/// transaction, then into the commit's RocksDB batch; its write-back cache counts against
/// the thread's share of `state.memory_mb`. Each store owns one column family and one
/// changelog partition; nothing else writes into either.
protocol StateStore: AnyObject {
    var columnFamily: ColumnFamily? { get }
    /// Whether anything changed since the last commit.
    var hasChanges: Bool { get }
    /// Each change since the last commit: the key and its new value, nil for a delete (a
    /// tombstone: a null value in the changelog).
    func forEachChange(_ body: (_ key: [UInt8], _ value: [UInt8]?) throws -> Void) rethrows
    /// Puts the changes into the commit's RocksDB batch.
    func writeChanges(to batch: StateWriteBatch)
    /// Called once the commit is durable.
    func markClean()
    /// Heap bytes the cache holds (estimated, kept current without scans).
    var bytes: Int { get }
    var entryCount: Int { get }
    /// Drops clean cache entries (RocksDB has them): call once the previous commit's tail
    /// is written and before this commit's changes are marked clean.
    func evictClean()
}
