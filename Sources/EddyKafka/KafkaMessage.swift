import CRdKafka

/// A borrowed view of one consumed message. Valid only until the `ConsumedBatch` that holds
/// it is released: payload and key point into librdkafka's buffers (no copy on the hot path).
public struct KafkaMessage {
    let raw: UnsafeMutablePointer<rd_kafka_message_t>

    public var errorCode: Int32 { raw.pointee.err.rawValue }
    public var isPartitionEOF: Bool { raw.pointee.err == RD_KAFKA_RESP_ERR__PARTITION_EOF }
    public var isError: Bool { raw.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR }
    public var partition: Int32 { raw.pointee.partition }
    public var offset: Int64 { raw.pointee.offset }

    /// librdkafka's handle of the message's topic: the same for every message of a topic
    /// in one client, so it identifies the topic without making a string.
    public var topicHandle: OpaquePointer? { raw.pointee.rkt }

    public var topic: String {
        guard let rkt = raw.pointee.rkt else { return "" }
        return String(cString: rd_kafka_topic_name(rkt))
    }

    public var value: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: raw.pointee.payload, count: raw.pointee.payload == nil ? 0 : raw.pointee.len)
    }

    /// The value, or nil for a record without one (a tombstone) — `value` reads both as empty.
    public var valueOrNil: UnsafeRawBufferPointer? { raw.pointee.payload == nil ? nil : value }

    public var key: UnsafeRawBufferPointer? {
        guard let key = raw.pointee.key else { return nil }
        return UnsafeRawBufferPointer(start: key, count: raw.pointee.key_len)
    }

    /// The broker/producer timestamp in ms, or nil when the record has none.
    public var timestamp: Int64? {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(raw, &type)
        return type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts
    }

    /// For error messages: librdkafka's text for the error.
    public var errorMessage: String {
        String(cString: rd_kafka_err2str(raw.pointee.err))
    }

    /// Header values by name (copied out; used on the cold paths only).
    public func header(_ name: String) -> [UInt8]? {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return nil }
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(headers, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        guard let value else { return [] }
        return Array(UnsafeRawBufferPointer(start: value, count: size))
    }
}

/// A reusable array of consumed messages. `release()` hands them back to librdkafka; a batch
/// is owned by the one thread that polls it.
public final class ConsumedBatch {
    let capacity: Int
    let storage: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    public private(set) var count = 0

    public init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit {
        release()
        storage.deallocate()
    }

    func filled(_ n: Int) { count = n }

    public subscript(i: Int) -> KafkaMessage { KafkaMessage(raw: storage[i]!) }

    public func release() {
        for i in 0..<count { rd_kafka_message_destroy(storage[i]) }
        count = 0
    }
}
