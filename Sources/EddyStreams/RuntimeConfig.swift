/// How and where a topology runs: broker, Redis, state, threads, commits, metrics.
/// Loaded from a runtime config file (configs/local.yaml) by EddyConfig.
public struct RuntimeConfig: Equatable, Sendable {
    public var bootstrapServers = "127.0.0.1:9092"
    /// Extra librdkafka properties for every client (security settings for a real cluster…).
    public var kafkaProperties: [String: String] = [:]
    /// Consumer-group session timeout. Tansu assigns a new group after about half of it,
    /// so dev and tests use 6 s; librdkafka's default is 45 s.
    public var sessionTimeoutMs = 45_000
    public var redisHost = "127.0.0.1"
    public var redisPort = 6379
    /// RocksDB lives in `<stateDir>/<application>`.
    public var stateDir = "state"
    /// RocksDB block cache plus write buffers, shared by every store of the process.
    public var memoryBudgetMB = 256
    /// Per store and task: groups kept in the write-back cache between commits.
    public var cacheMaxEntries = 1_000_000
    public var threads = 1
    public var commitIntervalMs = 1_000
    /// Records fetched per poll (one batch through the topology).
    public var pollBatchSize = 4_096
    /// Port for Prometheus `/metrics` on 127.0.0.1; nil turns the endpoint off.
    public var metricsPort: Int? = 9464
    public var logIntervalSeconds = 5.0

    public init() {}

    /// librdkafka properties shared by the consumer, producers and admin client.
    public var kafkaClientProperties: [String: String] {
        var p = kafkaProperties
        p["bootstrap.servers"] = bootstrapServers
        return p
    }
}
