import CRdKafka

/// Topic administration: create topics with explicit configs, read partition counts, delete
/// records below an offset.
public final class KafkaAdmin {
    let handle: OpaquePointer

    public init(config: KafkaConfig) throws {
        handle = try makeClient(RD_KAFKA_PRODUCER, try config.makeNative())
    }

    deinit { rd_kafka_destroy(handle) }

    /// Creates `name` unless it exists. Configs are explicit because some brokers (Tansu)
    /// report only the configs given at creation and cannot alter them later.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1,
                            configs: [String: String] = [:], timeoutMs: Int32 = 15_000) throws {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let topic = rd_kafka_NewTopic_new(name, Int32(partitions), Int32(replicationFactor), &errstr, errstr.count) else {
            throw KafkaError(code: -1, message: "create topic \(name): \(String(errorBuffer: errstr))")
        }
        defer { rd_kafka_NewTopic_destroy(topic) }
        for (k, v) in configs {
            try KafkaError.check(rd_kafka_NewTopic_set_config(topic, k, v), "topic \(name) config \(k)")
        }
        try runAdminRequest(operation: "create topic \(name)", timeoutMs: timeoutMs, tolerating: RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS,
                  start: { var topics: [OpaquePointer?] = [topic]; rd_kafka_CreateTopics(handle, &topics, 1, nil, $0) },
                  results: { event, count in rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), count) })
    }

    /// Deletes `name` with everything in it; a topic that does not exist is not an error.
    public func deleteTopic(_ name: String, timeoutMs: Int32 = 15_000) throws {
        let topic = rd_kafka_DeleteTopic_new(name)!
        defer { rd_kafka_DeleteTopic_destroy(topic) }
        try runAdminRequest(operation: "delete topic \(name)", timeoutMs: timeoutMs, tolerating: RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                  start: { var topics: [OpaquePointer?] = [topic]; rd_kafka_DeleteTopics(handle, &topics, 1, nil, $0) },
                  results: { event, count in rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event), count) })
    }

    /// Runs one admin request on a private queue and checks its per-topic results; the
    /// error `tolerating` counts as success (the wanted state already holds).
    private func runAdminRequest(operation: String, timeoutMs: Int32, tolerating: rd_kafka_resp_err_t,
                       start: (OpaquePointer) -> Void,
                       results: (OpaquePointer, UnsafeMutablePointer<Int>) -> UnsafeMutablePointer<OpaquePointer?>?) throws {
        let queue = rd_kafka_queue_new(handle)!
        defer { rd_kafka_queue_destroy(queue) }
        start(queue)
        guard let event = rd_kafka_queue_poll(queue, timeoutMs) else {
            throw KafkaError(code: -1, message: "\(operation): no answer from the broker in \(timeoutMs) ms")
        }
        defer { rd_kafka_event_destroy(event) }
        try KafkaError.check(rd_kafka_event_error(event), operation)
        var count = 0
        guard let list = results(event, &count) else { return }
        for i in 0..<count {
            let err = rd_kafka_topic_result_error(list[i])
            if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == tolerating { continue }
            let msg = rd_kafka_topic_result_error_string(list[i]).map { String(cString: $0) } ?? ""
            throw KafkaError(code: err.rawValue, message: "\(operation): \(String(cString: rd_kafka_err2str(err))) \(msg)")
        }
    }

    /// Deletes the records before each offset (Kafka's DeleteRecords: the partition's start
    /// moves up to it); returns the partitions' new start offsets. A partition's own error
    /// throws, naming it.
    @discardableResult
    public func deleteRecords(before offsets: [TopicPartition: Int64], timeoutMs: Int32 = 15_000) throws -> [TopicPartition: Int64] {
        guard !offsets.isEmpty else { return [:] }
        let list = makePartitionList(offsets.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        var request: OpaquePointer? = rd_kafka_DeleteRecords_new(list)
        defer { rd_kafka_DeleteRecords_destroy(request) }
        let queue = rd_kafka_queue_new(handle)!
        defer { rd_kafka_queue_destroy(queue) }
        rd_kafka_DeleteRecords(handle, &request, 1, nil, queue)
        guard let event = rd_kafka_queue_poll(queue, timeoutMs) else {
            throw KafkaError(code: -1, message: "delete records: no answer from the broker in \(timeoutMs) ms")
        }
        defer { rd_kafka_event_destroy(event) }
        try KafkaError.check(rd_kafka_event_error(event), "delete records")
        guard let result = rd_kafka_event_DeleteRecords_result(event), let done = rd_kafka_DeleteRecords_result_offsets(result) else { return [:] }
        var starts: [TopicPartition: Int64] = [:]
        for e in UnsafeBufferPointer(start: done.pointee.elems, count: Int(done.pointee.cnt)) {
            let tp = TopicPartition(String(cString: e.topic), e.partition)
            try KafkaError.check(e.err, "delete records of \(tp)")
            starts[tp] = e.offset
        }
        return starts
    }

    /// The partition count of `topic`, or nil if the broker does not know it.
    public func partitionCount(_ topic: String, timeoutMs: Int32 = 10_000) throws -> Int? {
        let rkt = rd_kafka_topic_new(handle, topic, nil)
        defer { if let rkt { rd_kafka_topic_destroy(rkt) } }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        try KafkaError.check(rd_kafka_metadata(handle, 0, rkt, &metadata, timeoutMs), "metadata for \(topic)")
        defer { rd_kafka_metadata_destroy(metadata) }
        guard let md = metadata?.pointee, md.topic_cnt > 0 else { return nil }
        let t = md.topics[0]
        if t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || t.partition_cnt == 0 { return nil }
        try KafkaError.check(t.err, "metadata for \(topic)")
        return Int(t.partition_cnt)
    }
}
