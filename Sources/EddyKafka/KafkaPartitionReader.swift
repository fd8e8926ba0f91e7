import CRdKafka

/// Reads one partition from an offset to its end, outside any consumer group (no
/// subscription, no commits): Eddy restores state stores from their changelogs with it.
/// Owned by one thread: it is not Sendable.
public final class KafkaPartitionReader {
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    public let partition: TopicPartition
    /// The error code of a start offset past the partition's end (with
    /// `auto.offset.reset=error`).
    public static let offsetOutOfRange = RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET.rawValue

    public init(config: KafkaConfig, partition: TopicPartition, from offset: Int64) throws {
        var config = config
        config["enable.auto.commit"] = "false"
        config["enable.partition.eof"] = "true"
        // On brokers that hide aborted records this hides them; Eddy's markers decide anyway.
        if config["isolation.level"] == nil { config["isolation.level"] = "read_committed" }
        if config["group.id"] == nil { config["group.id"] = "eddy-partition-reader" }  // never joined
        if config["fetch.queue.backoff.ms"] == nil { config["fetch.queue.backoff.ms"] = "10" }
        // Reaching the end is the goal: do not let the broker hold an empty fetch long.
        if config["fetch.wait.max.ms"] == nil { config["fetch.wait.max.ms"] = "20" }
        handle = try makeClient(RD_KAFKA_CONSUMER, try config.makeNative())
        self.partition = partition
        let list = makePartitionList([(partition, offset)])
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(handle)
            throw KafkaError(err, context: "assign \(partition)")
        }
        queue = rd_kafka_queue_get_consumer(handle) ?? rd_kafka_queue_get_main(handle)
    }

    deinit {
        rd_kafka_assign(handle, nil)
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
    }

    /// The partition's end as last seen in a fetch response (no broker round trip), for
    /// progress reports.
    public var cachedHighWatermark: Int64? {
        var low: Int64 = -1, high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(handle, partition.topic, partition.partition, &low, &high)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// Fills `batch` with the next messages (data, the partition-EOF event, errors), waiting
    /// at most `timeoutMs` for the first.
    public func read(into batch: ConsumedBatch, timeoutMs: Int32) {
        batch.release()
        let n = rd_kafka_consume_batch_queue(queue, timeoutMs, batch.storage, batch.capacity)
        batch.filled(max(n, 0))
    }
}
