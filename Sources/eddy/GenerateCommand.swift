import ArgumentParser
import EddyConfig
import EddyGen
import EddyKafka
import EddyStreams
import Foundation

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a seeded, deterministic clickstream to a JSONL file and/or a topic, and its item catalog to a topic.")

    @Option(help: "Number of events.") var events: Int = 100_000
    @Option(help: "Number of users.") var users: Int = 10_000
    @Option(help: "Number of items.") var items: Int = 20_000
    @Option(help: "Number of categories.") var categories: Int = 24
    @Option(help: "Random seed: the same seed gives the same events.") var seed: UInt64 = 42
    @Option(help: "Write JSON lines to this file.") var out: String?
    @Option(help: "Produce to this topic (keyed by user_id), created if missing.") var topic: String?
    @Option(help: "Partitions when creating the topic.") var partitions: Int = 4
    @Flag(help: "Produce without Kafka keys (as a console producer does; eddy run re-keys such records).") var unkeyed = false
    @Option(help: "Also write the item catalog to this topic (one row per item, keyed by item_id), created compacted if missing.")
    var catalogTopic: String?
    @Option(help: "Partitions when creating the catalog topic.") var catalogPartitions: Int = 1
    @Option(help: "Runtime config naming the broker.") var config: String = "configs/local.yaml"
    @Option(help: "At most this many events per second (a steady feed for a running pipeline); default: as fast as possible.")
    var rate: Double?

    func validate() throws {
        if out == nil && topic == nil && catalogTopic == nil {
            throw ValidationError("give --out FILE and/or --topic TOPIC, or --catalog-topic TOPIC")
        }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number of events per second") }
        if events < 0 || users < 2 || items < 1 || categories < 1 || partitions < 1 || catalogPartitions < 1 {
            throw ValidationError("--events ≥ 0, --users ≥ 2, --items, --categories, --partitions and --catalog-partitions ≥ 1")
        }
    }

    func run() throws {
        var options = ClickstreamGenerator.Options()
        options.users = users
        options.items = items
        options.categories = categories
        options.seed = seed
        let kafka = try (topic ?? catalogTopic).map { _ in KafkaConfig(try RuntimeConfigFile.load(path: config).kafkaClientProperties) }
        if let catalogTopic, let kafka {
            let start = Date()
            let rows = try ItemCatalog(options).write(topic: catalogTopic, partitions: catalogPartitions, kafka: kafka)
            print("wrote the catalog of \(rows) items to topic \(catalogTopic) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s, seed \(seed)")
        }
        guard out != nil || topic != nil else { return }
        var generator = ClickstreamGenerator(options)
        let writer = try ClickstreamWriter(outputPath: out, topic: topic, partitions: partitions, kafka: kafka, keyed: !unkeyed)
        let start = Date()
        var json: [UInt8] = []
        json.reserveCapacity(256)
        let clock = ContinuousClock(), began = clock.now
        for n in 0..<events {
            // Paced in steps of 1/100 s of events: sleeping per event would cost more than producing it.
            if let rate, n % max(1, Int(rate / 100)) == 0 {
                let due = began + .seconds(Double(n) / rate)
                let wait = due - clock.now
                if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18) }
            }
            let event = generator.next()
            json.removeAll(keepingCapacity: true)
            event.appendJSON(to: &json)
            try writer.write(event, json: json)
        }
        try writer.finish()
        let seconds = Date().timeIntervalSince(start)
        let target = [out.map { "file \($0)" }, topic.map { "topic \($0) (\(partitions) partitions)" }].compactMap { $0 }.joined(separator: " and ")
        print("generated \(events) events to \(target) in \(String(format: "%.2f", seconds)) s (\(Int(Double(events) / max(seconds, 1e-9))) events/s), seed \(seed)")
    }
}
