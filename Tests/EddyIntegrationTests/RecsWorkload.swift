@testable import EddyGen
import EddyKafka
import EddyTestSupport
import Foundation

/// `Topologies/recs.yaml`'s input for the crash test: generated clickstream chunks that
/// continue one another in event time (a live stream), keyed and partitioned by user; `events` keeps them
/// in each user's arrival order for `RecsExpectedState`.
final class RecsWorkload {
    static let partitions = 4
    let topic: String
    private let producer: KafkaProducer
    private(set) var events: [RecsReference.Event] = []
    private var nextStart: Int64 = 1_767_225_600_000
    private var chunks = 0

    init(topic: String, services: LocalServices) throws {
        self.topic = topic
        try KafkaAdmin(config: services.kafkaConfig).createTopic(topic, partitions: Self.partitions)
        producer = try KafkaProducer(config: services.kafkaConfig)
    }

    /// The recs integration test's shape: 400 users over 500 items in 8 categories, so
    /// co-view and the per-category rankings have structure.
    func produceChunk(_ count: Int) throws {
        var options = ClickstreamGenerator.Options()
        options.users = 400
        options.items = 500
        options.categories = 8
        options.seed = UInt64(700 + chunks)
        options.startMillis = nextStart
        chunks += 1
        var generator = ClickstreamGenerator(options)
        for _ in 0..<count {
            let e = generator.next()
            var json: [UInt8] = []
            e.appendJSON(to: &json)
            // Partitioned by key, as a producer feeding recs.yaml should: the top_k of its
            // co-view is exact only for input in its key's partition (README, co-view).
            try producer.send(topic: topic, key: Array(e.userKey.utf8), value: json)
            events.append(RecsReference.Event(user: e.userKey, item: "i\(e.item)", type: e.kind.rawValue, ts: e.timestamp, category: "c\(e.category)"))
            nextStart = max(nextStart, e.timestamp + 1)
        }
        try producer.flush()
    }
}
