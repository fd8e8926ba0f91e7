import CRdKafka

extension KafkaAdmin {
    /// The earliest offset of each partition (ListOffsets "earliest", which Tansu answers
    /// right; its "latest" is one batch short, so Eddy never relies on that).
    public func earliestOffsets(topic: String, partitions: Int, timeoutMs: Int32 = 10_000) throws -> [Int32: Int64] {
        var result: [Int32: Int64] = [:]
        for p in 0..<Int32(partitions) {
            var low: Int64 = 0, high: Int64 = 0
            try KafkaError.check(rd_kafka_query_watermark_offsets(handle, topic, p, &low, &high, timeoutMs),
                                 "earliest offset of \(topic)-\(p)")
            result[p] = low
        }
        return result
    }

    /// For each partition, the first offset whose record timestamp is at or after `timestamp`
    /// (ms), or nil when no record is that new. Some brokers (Tansu) answer at batch
    /// granularity, so a reader must still skip records older than `timestamp`.
    public func offsets(topic: String, partitions: Int, atTimestamp timestamp: Int64, timeoutMs: Int32 = 10_000) throws -> [Int32: Int64?] {
        let list = makePartitionList((0..<Int32(partitions)).map { (TopicPartition(topic, $0), timestamp) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_offsets_for_times(handle, list, timeoutMs), "offsets of \(topic) at \(timestamp)")
        var result: [Int32: Int64?] = [:]
        for element in list.elements {
            try KafkaError.check(element.err, "offset of \(topic)-\(element.partition) at \(timestamp)")
            result[element.partition] = element.offset >= 0 ? element.offset : nil
        }
        return result
    }

    /// Sets a consumer group's committed offsets by joining the group and committing as
    /// its only member, then leaving. The application must be stopped: its stopped members
    /// (which do not leave; see RuntimeConfig.leaveGroupOnClose) expire from the group
    /// after their session timeout, and only then does this member get every partition.
    /// Committing from outside the group is refused while the broker still lists them.
    public func commitGroupOffsets(group: String, offsets: [TopicPartition: Int64], config: KafkaConfig,
                                   timeout: Duration) throws {
        var config = config
        config["group.id"] = group
        let listener = StartAtCommitted()
        let consumer = try KafkaConsumer(config: config, topics: Array(Set(offsets.keys.map(\.topic))).sorted(), listener: listener)
        defer { consumer.close() }  // the sole member leaving a formed group: safe on Tansu too
        let batch = ConsumedBatch(capacity: 64)
        defer { batch.release() }
        let wanted = Set(offsets.keys)
        let deadline = ContinuousClock.now + timeout
        while !wanted.isSubset(of: consumer.assignment) {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, context: "take over group \(group) to set its offsets: other members still hold "
                                 + "\(wanted.subtracting(consumer.assignment).count) of \(wanted.count) partitions after \(timeout) (is the application still running?)")
            }
            consumer.poll(into: batch, timeoutMs: 100)
        }
        try consumer.commit(offsets)
    }
}

/// Starts assigned partitions at the group's committed offsets (nothing is read; the caller
/// watches the consumer's own `assignment`).
private final class StartAtCommitted: RebalanceListener {
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] { [:] }
    func partitionsRevoked(_ partitions: [TopicPartition]) {}
}
