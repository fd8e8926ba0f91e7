import EddyKafka
import EddyRedis
import Foundation

/// Rewinds an application, like Kafka's streams application reset tool: sets where each
/// source partition starts again, discards the local state and the internal topics'
/// contents (changelogs, repartition topics), and clears the application's Redis keys. The application must not be running.
public enum StreamsReset {
    public enum Target: Equatable, Sendable {
        case earliest
        /// Epoch milliseconds: the first record at or after it (by record timestamp).
        case timestamp(Int64)
        /// Explicit offsets; partitions not named start from the earliest offset.
        case offsets([Int32: Int64])
    }

    public struct Summary: Sendable {
        public let start: ReplayStart
        public let redisKeysDeleted: Int
        public let stateRemoved: Bool
    }

    public static func run(topology: Topology, config: RuntimeConfig, to target: Target) throws -> Summary {
        try LibrdkafkaVersion.checkSupported()
        let source = topology.source.topic
        let kafka = KafkaConfig(config.kafkaClientProperties)
        let admin = try KafkaAdmin(config: kafka)
        guard let partitions = try admin.partitionCount(source) else {
            throw RuntimeError("source topic '\(source)' does not exist on \(config.bootstrapServers)")
        }
        let earliest = try admin.earliestOffsets(topic: source, partitions: partitions)
        var positions: [Int32: ReplayStart.Position] = [:]
        switch target {
        case .earliest:
            for (p, offset) in earliest { positions[p] = .init(offset: offset) }
        case .timestamp(let ts):
            let found = try admin.offsets(topic: source, partitions: partitions, atTimestamp: ts)
            for p in 0..<Int32(partitions) {
                // No record that new: start at the earliest and skip everything older.
                positions[p] = .init(offset: (found[p] ?? nil) ?? earliest[p]!, minTimestamp: ts)
            }
        case .offsets(let explicit):
            for p in explicit.keys where !(0..<Int32(partitions)).contains(p) {
                throw RuntimeError("partition \(p) does not exist: \(source) has \(partitions) partition(s)")
            }
            for (p, offset) in earliest { positions[p] = .init(offset: max(explicit[p] ?? offset, offset)) }
        }
        let start = ReplayStart(topic: source, partitions: positions)

        let statePath = URL(fileURLWithPath: config.stateDir).appendingPathComponent(topology.application).path
        let stateRemoved = FileManager.default.fileExists(atPath: statePath)
        if stateRemoved { try FileManager.default.removeItem(atPath: statePath) }
        try start.save(stateDir: config.stateDir, application: topology.application)

        let compiled = try TopologyCompiler.compile(topology)
        try Changelogs.recreate(for: compiled, partitions: partitions, admin: admin)
        try Repartitions.recreate(for: compiled, partitions: partitions, admin: admin)
        // The group's position is where processing resumes; the emptied repartition topics
        // are read from their start.
        var offsets = Dictionary(uniqueKeysWithValues: positions.map { (TopicPartition(source, $0.key), $0.value.offset) })
        for topic in Repartitions.topics(of: compiled) {
            for p in 0..<Int32(partitions) { offsets[TopicPartition(topic, p)] = 0 }
        }
        var member = kafka
        member["session.timeout.ms"] = String(config.sessionTimeoutMs)
        // Stopped members expire after one session timeout; joining takes about half of one.
        try admin.commitGroupOffsets(group: topology.application, offsets: offsets, config: member,
                                     timeout: .milliseconds(3 * config.sessionTimeoutMs + 10_000))
        let redis = try RedisConnection(host: config.redisHost, port: config.redisPort, timeoutMs: config.redisTimeoutMs, credentials: config.redisCredentials)
        let deleted = try RedisView(topology).clear(in: redis, application: topology.application)
        return Summary(start: start, redisKeysDeleted: deleted, stateRemoved: stateRemoved)
    }
}
