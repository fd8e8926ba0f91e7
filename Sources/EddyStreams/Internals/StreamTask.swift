import EddyKafka

/// The unit of work and state: one input partition, its aggregates' tables, the offset it
/// has processed up to, and the per-record Redis writes waiting for the next commit.
/// Owned by the stream thread the partition is assigned to.
final class StreamTask {
    let partition: TopicPartition
    let aggregates: [AggregateTable]
    /// The next offset to process; everything before it is in the tables or dead-lettered.
    var nextOffset: Int64
    /// `nextOffset` as of the last durable commit (nil: nothing committed yet).
    var committedOffset: Int64?
    /// Event time: the largest record timestamp seen (ms).
    var streamTime: Int64 = .min
    var pendingWrites = PendingRedisWrites()
    /// After a reset to a time: records with an older (record) timestamp are skipped until
    /// the first that is not.
    var skipBeforeTimestamp: Int64?

    init(partition: TopicPartition, aggregates: [AggregateTable], nextOffset: Int64, committedOffset: Int64?) {
        self.partition = partition
        self.aggregates = aggregates
        self.nextOffset = nextOffset
        self.committedOffset = committedOffset
    }

    var hasUncommittedWork: Bool {
        committedOffset != nextOffset || !pendingWrites.isEmpty || aggregates.contains { !$0.dirty.isEmpty }
    }
}

/// Per-record sink writes of non-aggregate nodes, deduplicated to the last value per Redis
/// key and field until the commit sends them.
struct PendingRedisWrites {
    struct Target: Hashable {
        let kind: Topology.RedisSink.Kind
        let key: [UInt8]
        let field: [UInt8]
    }
    private(set) var values: [Target: (value: [UInt8], ttl: Int?)] = [:]

    var isEmpty: Bool { values.isEmpty }

    mutating func set(_ target: Target, _ value: [UInt8], ttl: Int?) {
        values[target] = (value, ttl)
    }

    mutating func removeAll() { values.removeAll(keepingCapacity: true) }
}
