/// Upper bounds on config values. Each exists because something downstream breaks (traps,
/// fails half-way through a commit, or allocates without bound) beyond it; the README's
/// config sections state them.
public enum ConfigLimits {
    /// Durations (`ttl`, `half_life`): 100 years (36525d). Redis 7 rejects an EXPIRE or
    /// SET EX whose seconds, turned into milliseconds and added to the current unix time in
    /// milliseconds, exceed 2^63 − 1 (about 9.2e15 s, shrinking as time passes); a TTL
    /// beyond that would fail at run time in the middle of a commit. 100 years is far
    /// inside it and longer than any useful TTL or half-life.
    public static let maxDurationSeconds = 36_525 * 86_400
    /// `state.memory_mb`: 1 TiB. The budget is turned into bytes (MB << 20) for RocksDB.
    public static let maxMemoryMB = 1 << 20
    /// `runtime.poll_batch_size`: each stream thread allocates this many message slots up
    /// front.
    public static let maxPollBatchSize = 1 << 20
    /// `runtime.threads`: each is an OS thread with its own consumer and producer.
    public static let maxThreads = 256
    /// `kafka.session_timeout_ms`: librdkafka's range for `session.timeout.ms` is
    /// 1..3600000; beyond it the consumer cannot even be created.
    public static let maxSessionTimeoutMs = 3_600_000
    /// `kafka.transaction_step_timeout_ms` and `redis.timeout_ms`: an hour. Longer waits
    /// only hide an outage (Eddy retries after a time-out anyway), and the values become
    /// Durations and timevals, which must not overflow.
    public static let maxStepTimeoutMs = 3_600_000
    /// `runtime.stop_timeout_ms`: at least 6 s. The last commit's Redis writes get 5 s of
    /// it (`TaskCommitter.tailGraceOnStop`); the Kafka steps before them need the rest.
    public static let minStopTimeoutMs = 6_000
    /// A decay's `top_k.k`: an epoch's close sorts an item's kept and new neighbours in
    /// memory, and a Redis zset of more is not a neighbour list any more.
    public static let maxTopK = 10_000
    // A model's `factors` and histories: `Topology.MatrixFactorization.maxFactors` and
    // `maxHistory` (the compiler checks them, for the Swift DSL too).

}
