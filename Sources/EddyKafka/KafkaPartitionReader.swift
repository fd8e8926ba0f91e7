import CRdKafka

/// Reads partitions from given offsets to their ends, outside any consumer group (no
/// subscription, no commits): Eddy restores state stores from their changelogs with it,
/// all the partitions of an assignment at once so their fetches overlap.
/// Owned by one thread: it is not Sendable.
public final class KafkaPartitionReader {
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    /// The partitions read, in the order given; `index(of:)` maps a message to its place.
    public let partitions: [TopicPartition]
    /// (topic handle, partition) → index in `partitions`, filled as topics first appear.
    private var indexByTopicHandle: [OpaquePointer: [Int32: Int]] = [:]
    /// The error code of a start offset past the partition's end (with
    /// `auto.offset.reset=error`).
    public static let offsetOutOfRange = RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET.rawValue

    public convenience init(config: KafkaConfig, from offsets: [(TopicPartition, Int64)]) throws {
        let (handle, queue) = try Self.makeAssignedClient(config: config, offsets: offsets)
        self.init(handle: handle, queue: queue, partitions: offsets.map(\.0))
    }

    /// Takes ownership of a ready client. Nothing here may fail: once every property is set,
    /// a throwing initializer would run `deinit`, and cleanup in the initializer would free
    /// the handles a second time.
    private init(handle: OpaquePointer, queue: OpaquePointer, partitions: [TopicPartition]) {
        self.handle = handle
        self.queue = queue
        self.partitions = partitions
    }

    /// Creates the C client and assigns it `offsets`; on failure frees what it made.
    private static func makeAssignedClient(config: KafkaConfig, offsets: [(TopicPartition, Int64)]) throws -> (handle: OpaquePointer, queue: OpaquePointer) {
        var config = config
        config["enable.auto.commit"] = "false"
        config["enable.partition.eof"] = "true"
        // On brokers that hide aborted records this hides them; Eddy's markers decide anyway.
        if config["isolation.level"] == nil { config["isolation.level"] = "read_committed" }
        if config["group.id"] == nil { config["group.id"] = "eddy-partition-reader" }  // never joined
        if config["fetch.queue.backoff.ms"] == nil { config["fetch.queue.backoff.ms"] = "10" }
        // Reaching the end is the goal: do not let the broker hold an empty fetch long.
        if config["fetch.wait.max.ms"] == nil { config["fetch.wait.max.ms"] = "20" }
        let handle = try makeClient(RD_KAFKA_CONSUMER, try config.makeNative())
        let queue = rd_kafka_queue_get_consumer(handle) ?? rd_kafka_queue_get_main(handle)!
        do {
            try assign(handle, offsets)
        } catch {
            rd_kafka_queue_destroy(queue)
            rd_kafka_destroy(handle)
            throw error
        }
        return (handle, queue)
    }

    deinit {
        rd_kafka_assign(handle, nil)
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
    }

    /// Reads `offsets` from now on instead (all partitions not named stop being read).
    /// Messages of the old assignment still in a batch must be released first.
    public func assign(_ offsets: [(TopicPartition, Int64)]) throws {
        try Self.assign(handle, offsets)
    }

    private static func assign(_ handle: OpaquePointer, _ offsets: [(TopicPartition, Int64)]) throws {
        let list = makePartitionList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(handle, offsets.isEmpty ? nil : list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: "assign \(offsets.map(\.0))") }
    }

    /// Which of `partitions` the message comes from.
    public func index(of message: KafkaMessage) -> Int? {
        guard let rkt = message.raw.pointee.rkt else { return nil }
        if let byPartition = indexByTopicHandle[rkt] { return byPartition[message.partition] }
        let name = String(cString: rd_kafka_topic_name(rkt))
        var byPartition: [Int32: Int] = [:]
        for (i, tp) in partitions.enumerated() where tp.topic == name { byPartition[tp.partition] = i }
        indexByTopicHandle[rkt] = byPartition
        return byPartition[message.partition]
    }

    /// The partition's end as last seen in a fetch response (no broker round trip), for
    /// progress reports.
    public func cachedHighWatermark(_ partition: TopicPartition) -> Int64? {
        var low: Int64 = -1, high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(handle, partition.topic, partition.partition, &low, &high)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// Fills `batch` with the next messages (data, partition-EOF events, errors), waiting
    /// at most `timeoutMs` for the first.
    public func read(into batch: ConsumedBatch, timeoutMs: Int32) {
        batch.release()
        let n = rd_kafka_consume_batch_queue(queue, timeoutMs, batch.storage, batch.capacity)
        batch.filled(max(n, 0))
    }
}
