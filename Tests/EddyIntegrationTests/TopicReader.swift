import EddyKafka
import Foundation

/// A record read back from a topic by a plain read_committed reader.
struct ReadRecord {
    let partition: Int32
    let key: String?
    let value: String
    /// The `eddy.id` header, if any.
    let id: String?
}

/// Reads every partition of `topic` from the beginning to its end, outside any group, with
/// isolation.level=read_committed — what any downstream consumer would see.
func readTopic(_ topic: String, partitions: Int, services: LocalServices, timeout: TimeInterval = 60) throws -> [ReadRecord] {
    let reader = try KafkaPartitionReader(config: services.kafkaConfig,
                                          from: (0..<Int32(partitions)).map { (TopicPartition(topic, $0), KafkaOffset.beginning) })
    let batch = ConsumedBatch(capacity: 1000)
    defer { batch.release() }
    var records: [ReadRecord] = []
    var ended = Set<Int32>()
    let deadline = Date().addingTimeInterval(timeout)
    while ended.count < partitions {
        guard Date() < deadline else { throw ServiceError("\(topic): not every partition reached its end within \(Int(timeout)) s") }
        reader.read(into: batch, timeoutMs: 200)
        for i in 0..<batch.count {
            let m = batch[i]
            if m.isPartitionEOF { ended.insert(m.partition); continue }
            if m.isError { continue }
            ended.remove(m.partition)
            records.append(ReadRecord(partition: m.partition, key: m.key.map { String(decoding: $0, as: UTF8.self) },
                                      value: String(decoding: m.value, as: UTF8.self),
                                      id: m.header("eddy.id").map { String(decoding: $0, as: UTF8.self) }))
        }
    }
    return records
}

/// The rule `Topology.TopicSink` gives a consumer on a broker that delivers aborted
/// transactions: in each partition of the output topic, keep a record only if its `eddy.id`
/// (`topic/partition/offset/n`) is above the highest seen there from the same source
/// partition, comparing (offset, n). Written here plainly, from the documentation, not from
/// Eddy's code.
func skippingRepeatedIDs(_ records: [ReadRecord]) -> [ReadRecord] {
    var highest: [String: (Int64, Int64)] = [:]
    return records.filter { r in
        guard let id = r.id else { return true }
        let parts = id.split(separator: "/")
        guard parts.count == 4, let offset = Int64(parts[2]), let n = Int64(parts[3]) else { return true }
        let source = "\(r.partition):\(parts[0])/\(parts[1])"
        if let top = highest[source], (offset, n) <= top { return false }
        highest[source] = (offset, n)
        return true
    }
}
