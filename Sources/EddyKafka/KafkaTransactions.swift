import CRdKafka

/// Transactions on a `KafkaProducer` created with a `transactional.id` (Kafka's EOS v2:
/// records and consumed offsets commit or abort together). Errors carry librdkafka's
/// classification: `isFatal` (fenced: close and never write again), `requiresAbort`,
/// `isRetriable`.
extension KafkaProducer {
    /// Registers the transactional.id with the broker, fencing any older producer that used
    /// it. Call once, before the first transaction.
    public func initTransactions(timeoutMs: Int32 = 30_000) throws {
        try KafkaError.check(rd_kafka_init_transactions(handle, timeoutMs), "init transactions")
    }

    public func beginTransaction() throws {
        try KafkaError.check(rd_kafka_begin_transaction(handle), "begin transaction")
    }

    /// Adds `offsets` (next offsets to read) of the group described by `groupMetadata`
    /// (from `KafkaConsumer.groupMetadata()`, consumed here) to the transaction: they are
    /// committed exactly when the transaction is. The group metadata (generation, member)
    /// lets the broker refuse a member that lost the partitions.
    public func sendOffsetsToTransaction(_ offsets: [TopicPartition: Int64], groupMetadata: KafkaGroupMetadata,
                                         timeoutMs: Int32 = 30_000) throws {
        let list = makePartitionList(offsets.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_send_offsets_to_transaction(handle, list, groupMetadata.handle, timeoutMs), "send offsets to transaction")
    }

    /// `sendOffsetsToTransaction(_:groupMetadata:)` with `consumer`'s current group metadata.
    public func sendOffsetsToTransaction(_ offsets: [TopicPartition: Int64], consumer: KafkaConsumer, timeoutMs: Int32 = 30_000) throws {
        guard let metadata = consumer.groupMetadata() else {
            throw KafkaError(code: -1, message: "send offsets to transaction: the consumer has no group metadata")
        }
        try sendOffsetsToTransaction(offsets, groupMetadata: metadata, timeoutMs: timeoutMs)
    }

    /// Flushes and commits the transaction.
    public func commitTransaction(timeoutMs: Int32 = 30_000) throws {
        try KafkaError.check(rd_kafka_commit_transaction(handle, timeoutMs), "commit transaction")
    }

    public func abortTransaction(timeoutMs: Int32 = 30_000) throws {
        try KafkaError.check(rd_kafka_abort_transaction(handle, timeoutMs), "abort transaction")
    }
}

/// A consumer's group metadata (generation, member id) for a transactional offset commit.
/// `@unchecked Sendable`: immutable once taken, and librdkafka only reads it.
public final class KafkaGroupMetadata: @unchecked Sendable {
    let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }

    deinit { rd_kafka_consumer_group_metadata_destroy(handle) }
}
