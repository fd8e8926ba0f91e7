import EddyKafka

/// A producer for writing a generated topic in bulk: creates the topic if it does not exist
/// (with explicit configs: Tansu reports only configs given at creation), then batches
/// generously and writes idempotently.
enum BulkTopicProducer {
    static func make(topic: String, partitions: Int, configs: [String: String], kafka: KafkaConfig) throws -> KafkaProducer {
        try LibrdkafkaVersion.checkSupported()
        try KafkaAdmin(config: kafka).createTopic(topic, partitions: partitions, configs: configs)
        var config = kafka
        for (k, v) in ["linger.ms": "20", "batch.num.messages": "10000", "queue.buffering.max.messages": "500000",
                       "enable.idempotence": "true"] where config[k] == nil { config[k] = v }
        return try KafkaProducer(config: config)
    }
}
