import EddyKafka

/// The unit of work and state: one input partition, its stores, the offset it has
/// processed up to, and the per-record Redis writes waiting for the next commit. Owned by
/// the stream thread the partition is assigned to.
///
/// A source task runs the topology on a source partition: each aggregate is either a store
/// of its own or, when re-keyed, a combiner whose partials go to the repartition topic at
/// commit. A repartition task owns one re-keyed aggregate's store for one repartition
/// partition, fed through its intake.
final class StreamTask {
    let partition: TopicPartition
    /// Source tasks: per aggregate (the topology's order), its store or combiner.
    let byAggregate: [AggregateTable]
    /// The tables backed by RocksDB and a changelog.
    let stores: [AggregateTable]
    /// Source tasks: the combiners of re-keyed aggregates.
    let combiners: [AggregateTable]
    /// Repartition tasks: what decides which upstream partials reach the store.
    let intake: RepartitionIntake?
    /// Where the combiners' partials start: the input offset of the last commit (or open).
    var combinedSince: Int64
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
    /// Redis lost (or never had) this task's keys: the next commit writes its whole state.
    var rematerialize = false
    /// The input offset of the task's first fenced Redis block in this process, and whether
    /// the group had committed anything for it when it opened: a new task's first write
    /// finds no watermark, and that is no loss.
    var firstFencedOffset: Int64?
    var openedWithState = false

    init(partition: TopicPartition, byAggregate: [AggregateTable], intake: RepartitionIntake?, nextOffset: Int64, committedOffset: Int64?) {
        self.partition = partition
        self.byAggregate = byAggregate
        self.intake = intake
        stores = intake.map { [$0.table] } ?? byAggregate.filter { $0.columnFamily != nil }
        combiners = byAggregate.filter { $0.columnFamily == nil }
        self.nextOffset = nextOffset
        self.committedOffset = committedOffset
        combinedSince = nextOffset
    }

    var hasUncommittedWork: Bool {
        rematerialize || committedOffset != nextOffset || !pendingWrites.isEmpty || stores.contains { !$0.dirty.isEmpty }
            || combiners.contains { $0.entryCount > 0 } || intake?.hasChanges == true
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
