import EddyKafka
import Logging

/// A stream thread's Kafka clients, configured from the runtime config.
enum StreamClients {
    /// The thread's producer, transactional under exactly-once; its transactional id is
    /// stable across restarts of this instance, so a restart fences its own zombie.
    static func producer(thread id: Int, context: RuntimeContext, logger: Logger) throws -> StreamProducer {
        let config = context.config
        return try StreamProducer(config: KafkaConfig(config.memoryBudget.producerProperties(config.kafkaClientProperties)), guarantee: config.processingGuarantee,
                                  transactionalId: "\(context.topology.topology.application)-\(config.resolvedInstanceId)-\(id)",
                                  stepTimeout: .milliseconds(config.transactionStepTimeoutMs),
                                  // The flag first: an atomic load per record, the Mutex only in a stop.
                                  stopDeadline: { [context] in context.stopRequested ? context.stopDeadlineForKafka : nil },
                                  metrics: context.metrics, logger: logger)
    }

    /// The thread's group consumer of the source and repartition topics.
    static func consumer(thread id: Int, context: RuntimeContext, topics: [String], listener: RebalanceListener) throws -> KafkaConsumer {
        let config = context.config
        let application = context.topology.topology.application
        var props = config.memoryBudget.consumerProperties(config.kafkaClientProperties)
        props["group.id"] = application
        props["client.id"] = "\(application)-\(id)"
        props["session.timeout.ms"] = String(config.sessionTimeoutMs)
        if config.staticMembership { props["group.instance.id"] = "\(config.resolvedInstanceId)-\(id)" }
        if props["max.poll.interval.ms"] == nil { props["max.poll.interval.ms"] = String(max(config.sessionTimeoutMs, 60_000)) }
        return try KafkaConsumer(config: KafkaConfig(props), topics: topics, listener: listener)
    }
}
