import EddyRedis
import Foundation

/// How and where a topology runs: broker, Redis, state, threads, commits, metrics.
/// Loaded from a runtime config file (configs/local.yaml) by EddyConfig.
public struct RuntimeConfig: Equatable, Sendable {
    public var bootstrapServers = "127.0.0.1:9092"
    /// Extra librdkafka properties for every client (security settings for a real cluster…).
    public var kafkaProperties: [String: String] = [:]
    /// Consumer-group session timeout. Tansu assigns a new group after about half of it,
    /// so dev and tests use 6 s; librdkafka's default is 45 s.
    public var sessionTimeoutMs = 45_000
    /// Static group membership (KIP-345): each stream thread joins as
    /// `<instanceId>-<thread>`, so a restarted process takes its old place (and its
    /// partitions) instead of waiting for its old member's session to expire: on Tansu
    /// 0.6.0, 7 s from start to first record instead of 12 s (6 s sessions), 27 s instead
    /// of 83 s (45 s sessions; Benchmarks/restart-time). Off by default all the same: on
    /// Tansu 0.6.0 a static member that stays away longer than its session and then
    /// rejoins leaves a group of several processes without a leader for good, where
    /// dynamic members recover (README, "librdkafka, Tansu and this machine";
    /// Benchmarks/group-restarts). A stopped member keeps its partitions until its session
    /// expires either way: Eddy sends no LeaveGroup (`leaveGroupOnClose`).
    public var staticMembership = false
    /// The shortest session a static member should have on Tansu 0.6.0. A restarted member
    /// refreshes its last contact only with its first heartbeat after SyncGroup, and Tansu
    /// holds its JoinGroup and SyncGroup 3 s each: with its start, a restore and the last
    /// heartbeat interval before the kill, it is away 7–10 s. Away longer than its session,
    /// the next heartbeat of another member drops it while it is still the group's leader,
    /// its rejoin gets a new member id, and no member can ever sync as leader (seen with
    /// 6 s sessions in CrashIntegrationTests, Tansu's coordinator log: last heartbeat
    /// 18:44:33.2, the other member's heartbeat 18:44:39.2 dropped it, the rejoin at 39.6
    /// got a new id).
    public static let staticSessionFloorMs = 15_000
    /// Whether a stopping stream thread sends LeaveGroup (a quick hand-over on Apache Kafka).
    /// Off by default: Tansu 0.6.0 keeps a group leader that leaves during a rebalance as
    /// the leader of the next generation, and the group never forms again (see README,
    /// "Tansu"). Without it, the stopped member's session expires after session_timeout_ms
    /// and the group rebalances then, which Tansu handles.
    public var leaveGroupOnClose = false
    /// This process's stable identity; nil: derived from the host name and the state
    /// directory (two processes cannot share a state directory, so it is unique per host).
    public var instanceId: String?
    /// Exactly-once (transactions, in-band markers, fenced Redis) or at-least-once.
    public var processingGuarantee = ProcessingGuarantee.exactlyOnce
    /// The longest Eddy waits for one blocking transactional step (send offsets, commit,
    /// abort, init). librdkafka's own timeouts are not always honoured after a broker
    /// connection drops; past this the producer is replaced and the attempt counts as
    /// aborted. Generous, because committing a large transaction flushes all its records.
    public var transactionStepTimeoutMs = 15_000
    public var redisHost = "127.0.0.1"
    public var redisPort = 6379
    /// Connect, read and write timeout of every Redis call: a Redis that accepts but never
    /// answers is an outage, not a hang.
    public var redisTimeoutMs = 5_000
    /// Redis AUTH (ACL user and password), from an environment variable or a file; nil: none.
    public var redisCredentials: RedisCredentials?
    /// RocksDB lives in `<stateDir>/<application>`.
    public var stateDir = "state"
    /// The process's memory budget: RocksDB's block cache and memtables, the stream threads'
    /// write-back caches and librdkafka's queues, split by `MemoryBudget`.
    public var memoryBudgetMB = 256
    /// Per store and task: groups kept in the write-back cache, a limit besides its share
    /// of `memoryBudgetMB` (the first one reached forces a commit and evicts).
    public var cacheMaxEntries = 1_000_000
    public var threads = 1
    public var commitIntervalMs = 1_000
    /// How often a stream thread deletes what its group has committed past in the
    /// repartition topics it reads (they keep records with no time limit otherwise).
    public var repartitionPurgeIntervalMs = 30_000
    /// The longest a stop (SIGTERM, SIGINT, `requestStop`) takes. A transactional step still
    /// waiting for an unreachable broker is abandoned at `stopTimeoutMs` minus the last
    /// commit's 5 s for Redis, whatever its own `transactionStepTimeoutMs` says: a step that
    /// began just before the stop, then a replacement producer's init, could otherwise hold
    /// the stop for two step time-outs and more. What was not committed then is processed
    /// again by the next start. 25 s leaves room under the usual 30 s grace period of a
    /// service manager (Kubernetes' terminationGracePeriodSeconds, systemd's TimeoutStopSec
    /// is 90 s).
    public var stopTimeoutMs = 25_000
    /// Records fetched per poll (one batch through the topology).
    public var pollBatchSize = 4_096
    /// Port for Prometheus `/metrics` on 127.0.0.1; nil turns the endpoint off.
    public var metricsPort: Int? = 9464
    public var logIntervalSeconds = 5.0

    public init() {}

    /// `instanceId`, or one derived from the host name and the absolute state directory.
    public var resolvedInstanceId: String {
        if let instanceId { return instanceId }
        let dir = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: stable across runs, unlike Hasher
        for byte in dir.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host)-\(String(hash & 0xffff_ffff, radix: 16))"
    }

    /// librdkafka properties shared by the consumer, producers and admin client.
    public var kafkaClientProperties: [String: String] {
        var p = kafkaProperties
        p["bootstrap.servers"] = bootstrapServers
        return p
    }
}

/// What a crash may cost (Kafka Streams' `processing.guarantee`).
public enum ProcessingGuarantee: String, Sendable, CaseIterable {
    /// Every input record affects state, Redis and output exactly once, whatever crashes.
    case exactlyOnce = "exactly_once"
    /// Nothing is lost; after a crash, records since the last commit are processed again
    /// (counts may include them twice). Cheaper commits: no transactions.
    case atLeastOnce = "at_least_once"
}
