import CRdKafka

/// Counts delivery failures reported by librdkafka's delivery-report callback, and the
/// highest delivered offset of each tag.
///
/// `@unchecked Sendable` is honest: librdkafka runs the callback only inside poll/flush
/// (and commit_transaction), which only the producer's owning thread calls.
private final class DeliveryContext: @unchecked Sendable {
    var failures = 0
    var firstFailure: String?
    var highestOffset: [Int: Int64] = [:]
}

private let deliveryCallback: @convention(c) (
    OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?
) -> Void = { _, message, opaque in
    guard let message, let opaque else { return }
    let context = Unmanaged<DeliveryContext>.fromOpaque(opaque).takeUnretainedValue()
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        // The per-message opaque is the record's tag (0: untracked).
        let tag = Int(bitPattern: message.pointee._private)
        if tag != 0, message.pointee.offset > context.highestOffset[tag, default: -1] {
            context.highestOffset[tag] = message.pointee.offset
        }
        return
    }
    context.failures += 1
    if context.firstFailure == nil {
        let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
        context.firstFailure = "\(topic): \(String(cString: rd_kafka_err2str(message.pointee.err)))"
    }
}

/// A producer owned by one thread. Delivery failures surface as an error from `flush`.
public final class KafkaProducer {
    let handle: OpaquePointer
    private let context = DeliveryContext()
    private var topics: [String: OpaquePointer] = [:]
    /// How long `send` waits for room in a full queue before it throws QUEUE_FULL.
    public var maxQueueFullWaitMs = 30_000
    /// Whether closing waits (up to 10 s) for queued records to be delivered. Off for a
    /// producer whose unsent records nobody needs (a transaction that will never commit):
    /// closing then drops them at once instead of waiting for an unreachable broker.
    public var flushesOnClose = true

    public init(config: KafkaConfig) throws {
        var config = config
        if config["partitioner"] == nil { config["partitioner"] = "murmur2_random" }  // same as the Java client
        let conf = try config.makeNative()
        rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        handle = try makeClient(RD_KAFKA_PRODUCER, conf)
    }

    deinit {
        if flushesOnClose {
            rd_kafka_flush(handle, 10_000)
        } else {
            _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING))
        }
        for topic in topics.values { rd_kafka_topic_destroy(topic) }
        rd_kafka_destroy(handle)
    }

    private func topicHandle(_ name: String) throws -> OpaquePointer {
        if let t = topics[name] { return t }
        guard let t = rd_kafka_topic_new(handle, name, nil) else {
            throw KafkaError(rd_kafka_last_error(), context: "topic \(name)")
        }
        topics[name] = t
        return t
    }

    /// Enqueues one record (copied). Waits while librdkafka's queue is full.
    /// `partition` nil lets the partitioner choose from the key.
    public func send(topic: String, partition: Int32? = nil, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer) throws {
        let rkt = try topicHandle(topic)
        let part = partition ?? Int32(RD_KAFKA_PARTITION_UA)
        while true {
            let rc = rd_kafka_produce(rkt, part, RD_KAFKA_MSG_F_COPY,
                                      UnsafeMutableRawPointer(mutating: value.baseAddress), value.count,
                                      key?.baseAddress, key?.count ?? 0, nil)
            if rc == 0 { return }
            let err = rd_kafka_last_error()
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw KafkaError(err, context: "produce to \(topic)") }
            try refuseRecordLargerThanQueue(topic: topic, bytes: value.count)
            rd_kafka_poll(handle, 50)
        }
    }

    public func send(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]) throws {
        try value.withUnsafeBytes { v in
            if let key {
                try key.withUnsafeBytes { k in try send(topic: topic, partition: partition, key: k, value: v) }
            } else {
                try send(topic: topic, partition: partition, key: nil, value: v)
            }
        }
    }

    /// The highest offset delivered so far among records sent with `tag`.
    public func deliveredOffset(tag: Int) -> Int64? { context.highestOffset[tag] }

    /// Forgets the delivered offsets of every tag.
    public func resetDeliveredOffsets() { context.highestOffset.removeAll(keepingCapacity: true) }

    /// Enqueues one record with headers (copied); `partition` nil lets the partitioner choose
    /// from the key. A non-zero `tag` makes its delivered offset visible to
    /// `deliveredOffset(tag:)`. For changelog records, markers and dead letters.
    public func send(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?,
                     headers: [(String, [UInt8])], tag: Int = 0) throws {
        let hdrs = rd_kafka_headers_new(headers.count)!
        for (name, v) in headers {
            _ = v.withUnsafeBytes { rd_kafka_header_add(hdrs, name, -1, $0.baseAddress, $0.count) }
        }
        var sent = false
        defer { if !sent { rd_kafka_headers_destroy(hdrs) } }  // on success librdkafka owns them
        var waitedMs = 0
        while true {
            let error: OpaquePointer? = topic.withCString { topicName in
                (value ?? []).withUnsafeBytes { v in
                    (key ?? []).withUnsafeBytes { k in
                        var vus = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 7)
                        vus[0].vtype = RD_KAFKA_VTYPE_TOPIC
                        vus[0].u.cstr = topicName
                        vus[1].vtype = RD_KAFKA_VTYPE_VALUE  // nil value: a tombstone
                        vus[1].u.mem = .init(ptr: value == nil ? nil : UnsafeMutableRawPointer(mutating: v.baseAddress), size: value == nil ? 0 : v.count)
                        vus[2].vtype = RD_KAFKA_VTYPE_KEY
                        vus[2].u.mem = .init(ptr: key == nil ? nil : UnsafeMutableRawPointer(mutating: k.baseAddress), size: key == nil ? 0 : k.count)
                        vus[3].vtype = RD_KAFKA_VTYPE_HEADERS
                        vus[3].u.headers = hdrs
                        vus[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                        vus[4].u.i = RD_KAFKA_MSG_F_COPY
                        vus[5].vtype = RD_KAFKA_VTYPE_PARTITION
                        vus[5].u.i32 = partition ?? Int32(RD_KAFKA_PARTITION_UA)
                        vus[6].vtype = RD_KAFKA_VTYPE_OPAQUE
                        vus[6].u.ptr = UnsafeMutableRawPointer(bitPattern: tag)
                        return rd_kafka_produceva(handle, vus, vus.count)
                    }
                }
            }
            guard let error else { sent = true; return }
            // A full queue drains as the broker acknowledges; one that stays full means the
            // broker is unreachable, which the caller must hear about rather than wait forever.
            if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL && waitedMs < maxQueueFullWaitMs {
                rd_kafka_error_destroy(error)
                try refuseRecordLargerThanQueue(topic: topic, bytes: value?.count ?? 0)
                rd_kafka_poll(handle, 50)
                waitedMs += 50
                continue
            }
            throw KafkaError(consuming: error, context: "produce to \(topic)")
        }
    }

    /// librdkafka answers QUEUE_FULL to a record whose value is larger than
    /// `queue.buffering.max.kbytes` however empty the queue is: with nothing queued, waiting
    /// cannot help. (A record leaves `rd_kafka_outq_len` once its delivery report is served,
    /// by this thread's polls, as the delivery callback is always set: so 0 after a
    /// QUEUE_FULL means the queue was empty, not that reports were pending.)
    private func refuseRecordLargerThanQueue(topic: String, bytes: Int) throws {
        guard rd_kafka_outq_len(handle) == 0 else { return }
        throw KafkaError(code: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue,
                         message: "produce to \(topic): a record value of \(bytes) bytes is larger than the producer's whole queue (queue.buffering.max.kbytes)")
    }

    /// Serves delivery reports without blocking.
    public func poll() { rd_kafka_poll(handle, 0) }

    /// Waits until every enqueued record is acknowledged; throws if any delivery failed
    /// since the last flush, or on time-out.
    public func flush(timeoutMs: Int32 = 30_000) throws {
        let err = rd_kafka_flush(handle, timeoutMs)
        if context.failures > 0 {
            let message = "\(context.failures) record(s) not delivered, first: \(context.firstFailure ?? "?")"
            context.failures = 0
            context.firstFailure = nil
            throw KafkaError(code: -1, message: message)
        }
        try KafkaError.check(err, "flush producer")
    }
}
