import ArgumentParser
import EddyConfig
import EddyKafka
import EddyStreams
import Foundation

/// The librdkafka consume ceiling on a topic: the same consumer and batch size as a stream
/// thread, records discarded. Benchmarks compare Eddy's throughput against it.
struct ConsumeCeiling: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume-ceiling",
        abstract: "Measure how fast librdkafka alone consumes a topic (consume + discard), for benchmarks.")

    @Option(help: "The topic to read from the beginning.") var topic: String
    @Option(help: "The runtime config naming the broker.") var config: String = "configs/local.yaml"
    @Flag(help: "Print the result as one JSON object.") var json = false

    private final class FromBeginning: RebalanceListener {
        func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
            Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.beginning) })
        }
        func partitionsRevoked(_ partitions: [TopicPartition]) {}
    }

    func run() throws {
        try LibrdkafkaVersion.checkSupported()
        let runtime = try RuntimeConfigFile.load(path: config)
        guard let partitions = try KafkaAdmin(config: KafkaConfig(runtime.kafkaClientProperties)).partitionCount(topic) else {
            throw RuntimeError("topic '\(topic)' does not exist on \(runtime.bootstrapServers)")
        }
        var props = runtime.kafkaClientProperties
        props["group.id"] = "eddy-consume-ceiling-\(UUID().uuidString.prefix(8))"
        props["session.timeout.ms"] = String(runtime.sessionTimeoutMs)
        let listener = FromBeginning()
        let consumer = try KafkaConsumer(config: KafkaConfig(props), topics: [topic], listener: listener)
        let batch = ConsumedBatch(capacity: runtime.pollBatchSize)
        var records = 0, bytes = 0
        var ended = Set<Int32>()
        var first: Date?
        while ended.count < partitions {
            consumer.poll(into: batch, timeoutMs: 100)
            for i in 0..<batch.count {
                let m = batch[i]
                if m.isPartitionEOF { ended.insert(m.partition); continue }
                if m.isError { continue }
                if first == nil { first = Date() }
                records += 1
                bytes += m.value.count
            }
        }
        let seconds = Date().timeIntervalSince(first ?? Date())
        batch.release()
        consumer.close()
        let rate = seconds > 0 ? Double(records) / seconds : 0
        if json {
            print("{\"records\":\(records),\"bytes\":\(bytes),\"seconds\":\(seconds),\"records_per_second\":\(rate)}")
        } else {
            print("consumed \(records) records (\(bytes / 1_000_000) MB) in \(String(format: "%.2f", seconds)) s: \(Int(rate)) records/s")
        }
    }
}
