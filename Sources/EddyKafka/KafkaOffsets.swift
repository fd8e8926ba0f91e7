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

    /// Sets a consumer group's committed offsets (the group must have no active members).
    public func commitGroupOffsets(group: String, offsets: [TopicPartition: Int64], config: KafkaConfig) throws {
        var config = config
        config["group.id"] = group
        config["enable.auto.commit"] = "false"
        let consumer = try makeClient(RD_KAFKA_CONSUMER, try config.makeNative())
        defer {
            rd_kafka_consumer_close(consumer)
            rd_kafka_destroy(consumer)
        }
        let list = makePartitionList(offsets.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_commit(consumer, list, 0), "commit offsets of group \(group)")
        for element in list.elements {
            try KafkaError.check(element.err, "commit offset of group \(group) for \(String(cString: element.topic))-\(element.partition)")
        }
    }
}
