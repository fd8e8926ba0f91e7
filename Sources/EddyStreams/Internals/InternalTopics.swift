import EddyKafka

/// One kind of Eddy's internal topics (changelogs, repartition topics): one topic per store
/// or re-keyed aggregate, with the source's partition count and explicit configs (some
/// brokers — Tansu 0.6.0 — cannot alter them later).
protocol InternalTopics {
    static var topicConfigs: [String: String] { get }
    static func topics(of topology: CompiledTopology) -> [String]
}

extension InternalTopics {
    static func create(for topology: CompiledTopology, partitions: Int, admin: KafkaAdmin) throws {
        for name in topics(of: topology) {
            try admin.createTopic(name, partitions: partitions, configs: topicConfigs)
        }
    }

    /// Empties them (delete and create again): after a reset their contents describe a
    /// past that no longer happened.
    static func recreate(for topology: CompiledTopology, partitions: Int, admin: KafkaAdmin) throws {
        for name in topics(of: topology) { try admin.deleteTopic(name) }
        try create(for: topology, partitions: partitions, admin: admin)
    }
}
