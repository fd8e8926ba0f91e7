import CRdKafka

/// Told about partition assignment changes. Called on the polling thread, from inside `poll`.
public protocol RebalanceListener: AnyObject {
    /// Partitions were assigned; returns the offset to start each at (nil: the group's
    /// committed offset, else `auto.offset.reset`).
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64]
    /// Of the partitions just assigned, those to pause from the start (e.g. until their
    /// state is restored): nothing is fetched for them until `KafkaConsumer.resume`.
    func pausedAtAssignment(_ partitions: [TopicPartition]) -> Set<TopicPartition>
    /// Partitions are about to be taken away: flush and commit them now.
    func partitionsRevoked(_ partitions: [TopicPartition])
}

extension RebalanceListener {
    public func pausedAtAssignment(_ partitions: [TopicPartition]) -> Set<TopicPartition> { [] }
}

/// Carries the listener into librdkafka's C rebalance callback.
///
/// `@unchecked Sendable` is honest here: librdkafka calls the rebalance callback only from
/// the thread that calls poll/close on this consumer, which is the one thread owning it.
private final class RebalanceContext: @unchecked Sendable {
    weak var listener: RebalanceListener?
    var assignment: Set<TopicPartition> = []
}

private let rebalanceCallback: @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?
) -> Void = { rk, err, list, opaque in
    guard let rk, let list, let opaque else { return }
    let context = Unmanaged<RebalanceContext>.fromOpaque(opaque).takeUnretainedValue()
    let partitions = list.elements.map { TopicPartition(String(cString: $0.topic), $0.partition) }
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        let offsets = context.listener?.partitionsAssigned(partitions) ?? [:]
        for i in 0..<list.elements.count {
            let tp = partitions[i]
            list.elements[i].offset = offsets[tp] ?? Int64(RD_KAFKA_OFFSET_INVALID)
        }
        context.assignment = Set(partitions)
        rd_kafka_assign(rk, list)
        // Before the first fetch: nothing of a paused partition is fetched until resumed.
        let paused = context.listener?.pausedAtAssignment(partitions) ?? []
        if !paused.isEmpty {
            let pausedList = makePartitionList(paused.map { ($0, 0) })
            rd_kafka_pause_partitions(rk, pausedList)
            rd_kafka_topic_partition_list_destroy(pausedList)
        }
    default:
        // Revocation, or an error that leaves the assignment unknown: give everything up cleanly.
        context.listener?.partitionsRevoked(partitions)
        context.assignment = []
        rd_kafka_assign(rk, nil)
    }
}

/// A group consumer (eager rebalancing, manual commits, partition EOF events on).
/// Owned by one thread: it is not Sendable.
public final class KafkaConsumer {
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private let context: RebalanceContext
    private var closed = false
    /// False once `stopWithoutLeaving` was called: destroying must not leave the group.
    private var leavesOnDestroy = true

    /// Eddy's required consumer settings; `config` may add to but not change these.
    static let required: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "enable.partition.eof": "true",
        "partition.assignment.strategy": "range,roundrobin",
    ]

    public convenience init(config: KafkaConfig, topics: [String], listener: RebalanceListener) throws {
        let context = RebalanceContext()
        context.listener = listener
        let (handle, queue) = try Self.makeSubscribedClient(config: config, topics: topics, context: context)
        self.init(handle: handle, queue: queue, context: context)
    }

    /// Takes ownership of a ready client. Nothing here may fail: once every property is set,
    /// a throwing initializer would run `deinit`, and cleanup in the initializer would free
    /// the handles a second time.
    private init(handle: OpaquePointer, queue: OpaquePointer, context: RebalanceContext) {
        self.handle = handle
        self.queue = queue
        self.context = context
    }

    /// Creates, configures and subscribes the C client; on failure frees what it made.
    private static func makeSubscribedClient(config: KafkaConfig, topics: [String],
                                             context: RebalanceContext) throws -> (handle: OpaquePointer, queue: OpaquePointer) {
        var config = config
        for (k, v) in required { config[k] = v }
        if config["auto.offset.reset"] == nil { config["auto.offset.reset"] = "earliest" }
        // When the local queue is over queued.min.messages, librdkafka waits this long before
        // fetching again (default 1 s). A consumer that processes a little slower than the
        // broker serves then idles most of each second: measured here, 1M records took 8 s
        // instead of 2 s. A short back-off keeps the prefetch queue topped up.
        if config["fetch.queue.backoff.ms"] == nil { config["fetch.queue.backoff.ms"] = "10" }
        // A fetch that finds nothing new waits this long at the broker (default 500 ms).
        // Tansu 0.6.0 answers such a fetch only when the wait ends, not when records arrive,
        // so the wait is latency every new record sees: measured with HTTP ingest and 100 ms
        // commits (Benchmarks/ingest_freshness.py), POST-to-Redis p50 186 ms / p99 287 ms at
        // the default, 84 / 89 ms at 20 ms. A fetch that finds records returns at once
        // either way, so throughput is unchanged; idle, it costs 50 empty fetches a second.
        if config["fetch.wait.max.ms"] == nil { config["fetch.wait.max.ms"] = "20" }
        if config["isolation.level"] == nil { config["isolation.level"] = "read_committed" }
        let conf = try config.makeNative()
        rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        let handle = try makeClient(RD_KAFKA_CONSUMER, conf)
        rd_kafka_poll_set_consumer(handle)
        guard let queue = rd_kafka_queue_get_consumer(handle) else {
            // librdkafka creates a consumer without group.id, but one without a group queue.
            rd_kafka_destroy(handle)
            throw KafkaError(code: -1, message: "a group consumer needs group.id")
        }

        let list = makePartitionList(topics.map { (TopicPartition($0, Int32(RD_KAFKA_PARTITION_UA)), 0) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_subscribe(handle, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_queue_destroy(queue)
            rd_kafka_destroy(handle)
            throw KafkaError(err, context: "subscribe to \(topics)")
        }
        return (handle, queue)
    }

    deinit {
        if leavesOnDestroy { close() }
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy_flags(handle, leavesOnDestroy ? 0 : Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    }

    public var assignment: Set<TopicPartition> { context.assignment }

    /// Fills `batch` with up to its capacity of messages (data, partition EOFs and errors),
    /// waiting at most `timeoutMs` for the first. Rebalance callbacks run inside this call.
    ///
    /// librdkafka's batch call waits until the batch is full or the time is up, so one call
    /// for the whole batch held every record of a 3,000 records/s stream for the full
    /// timeout (freshness through `eddy run` then gained up to 100 ms per hop). Here the
    /// first message is waited for, and the rest is what is already queued.
    public func poll(into batch: ConsumedBatch, timeoutMs: Int32) {
        batch.release()
        var n = Int(rd_kafka_consume_batch_queue(queue, timeoutMs, batch.storage, 1))
        if n == 1, batch.capacity > 1 {
            n += max(Int(rd_kafka_consume_batch_queue(queue, 0, batch.storage + 1, batch.capacity - 1)), 0)
        }
        batch.filled(max(n, 0))
    }

    /// Synchronously commits `offsets` (the next offset to read, per partition) to the group.
    public func commit(_ offsets: [TopicPartition: Int64]) throws {
        guard !offsets.isEmpty else { return }
        let list = makePartitionList(offsets.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_commit(handle, list, 0), "commit offsets")
    }

    /// The low and high watermarks last seen in fetch responses (no broker round trip).
    /// Tansu's ListOffsets is one batch short, but fetch-response watermarks are right.
    public func cachedWatermarks(_ tp: TopicPartition) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1, high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(handle, tp.topic, tp.partition, &low, &high)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? (low, high) : nil
    }

    /// The group's committed offsets for `partitions`; absent where the group has none.
    /// (Tansu 0.6.0 drops commit metadata, so Eddy never relies on it.)
    public func committed(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) throws -> [TopicPartition: Int64] {
        let list = makePartitionList(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_committed(handle, list, timeoutMs), "committed offsets")
        var result: [TopicPartition: Int64] = [:]
        for e in list.elements where e.offset >= 0 {
            result[TopicPartition(String(cString: e.topic), e.partition)] = e.offset
        }
        return result
    }

    /// The consumer's group metadata, for transactional offset commits.
    public func groupMetadata() -> KafkaGroupMetadata? { rd_kafka_consumer_group_metadata(handle).map(KafkaGroupMetadata.init) }

    /// Stops fetching `partitions` (their queued records are dropped; fetching resumes
    /// from the position after the last record returned). Group membership is unaffected
    /// as long as `poll` goes on being called.
    public func pause(_ partitions: Set<TopicPartition>) throws {
        guard !partitions.isEmpty else { return }
        let list = makePartitionList(partitions.map { ($0, 0) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_pause_partitions(handle, list), "pause \(partitions.count) partition(s)")
    }

    /// Fetches `partitions` again after `pause`.
    public func resume(_ partitions: Set<TopicPartition>) throws {
        guard !partitions.isEmpty else { return }
        let list = makePartitionList(partitions.map { ($0, 0) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_resume_partitions(handle, list), "resume \(partitions.count) partition(s)")
    }

    /// Leaves the group: the rebalance callback revokes the assignment (flush + commit) first.
    public func close() {
        guard !closed else { return }
        closed = true
        rd_kafka_consumer_close(handle)
    }

    /// Stops without leaving the group (no revoke callback, no LeaveGroup): the member's
    /// session expires on the broker after session.timeout.ms and the group rebalances
    /// then. For a caller that has already committed everything it owns.
    public func stopWithoutLeaving() {
        guard !closed else { return }
        closed = true
        leavesOnDestroy = false
    }
}
