import Synchronization

/// The process's metrics, rendered in Prometheus' text format at `/metrics` and exported
/// to swift-metrics (`SwiftMetricsExport`).
///
/// The atomics are the source of truth: stream threads add per batch or per commit, never
/// per record, and readers (a scrape, the export) only load them. `Sendable`: counters are
/// atomics and the keyed maps sit behind a Mutex.
public final class StreamsMetrics: Sendable {
    public let recordsIn = Atomic<Int>(0)
    public let recordsProcessed = Atomic<Int>(0)
    public let redisWrites = Atomic<Int>(0)
    /// Blocks of Redis writes the fence refused because Redis was already further along.
    public let fencedWrites = Atomic<Int>(0)
    public let commits = Atomic<Int>(0)
    public let commitMicrosTotal = Atomic<Int>(0)
    public let commitMicrosMax = Atomic<Int>(0)
    /// Commit attempts that failed (each is aborted and retried; nothing is lost).
    public let commitFailures = Atomic<Int>(0)
    /// Transactional steps that did not finish within `kafka.transaction_step_timeout_ms` and
    /// were abandoned: the producer was rebuilt and the attempt counts as aborted.
    public let transactionTimeouts = Atomic<Int>(0)
    /// Wall-clock time of the last successful commit (unix seconds; 0: none yet), so an
    /// alert can say "no commit for 60 s" (a monitoring fact, not an event-time one).
    public let lastCommitUnixSeconds = Atomic<Int>(0)
    /// Redis commands or connections that failed (each retried until Redis is back).
    public let redisErrors = Atomic<Int>(0)
    /// Redis outages (a commit tail that failed, until it is written), summed over threads.
    public let redisOutages = Atomic<Int>(0)
    /// Stream threads paused now because Redis cannot take their last commit.
    public let redisOutagesActive = Atomic<Int>(0)
    /// Time stream threads spent paused for a Redis outage (summed over threads).
    public let redisOutageMicros = Atomic<Int>(0)
    /// Spells of commits failing because the broker could not be reached, and their time.
    public let kafkaOutages = Atomic<Int>(0)
    public let kafkaOutageMicros = Atomic<Int>(0)
    /// Tasks whose whole state was written to Redis again because Redis had lost it.
    public let rematerializedTasks = Atomic<Int>(0)
    /// Records too late for their window (beyond its grace), dead-lettered with reason `late`;
    /// and records too late for a top K's epoch (skipped: they are pairs, not source records).
    public let lateRecords = Atomic<Int>(0)
    /// Neighbours a decay's top K pruned (left the store and Redis) as epochs closed.
    public let prunedNeighbours = Atomic<Int>(0)
    /// Groups a state_ttl expired (idle for it on event time).
    public let expiredGroups = Atomic<Int>(0)
    /// Global-table records applied while running (after the start's load), summed over the
    /// stream threads (each keeps its own copy of every table).
    public let tableUpdates = Atomic<Int>(0)
    /// Global-table records that could not be rows (no key, not a JSON object), summed over threads.
    public let invalidTableRecords = Atomic<Int>(0)
    /// Source records whose Kafka key was not their key field's value (or absent).
    public let rekeyedSourceRecords = Atomic<Int>(0)
    /// Records a join found no table row for (dropped, passed with nulls or dead-lettered).
    public let joinMisses = Atomic<Int>(0)
    /// What the stream threads' write-back caches hold now (their estimate, bytes), per batch.
    public let writeBackCacheBytes = Atomic<Int>(0)
    /// When the first record arrived (ns on the continuous clock; 0: none yet), so throughput
    /// can leave out startup and the consumer-group join.
    let firstRecordNanos = Atomic<Int>(0)
    private let deadLetters = Mutex<[String: Int]>([:])
    private let lag = Mutex<[String: Int64]>([:])
    private let tableRows = Mutex<[String: Int]>([:])

    public init() {}

    public func addDeadLetters(_ counts: [String: Int]) {
        guard !counts.isEmpty else { return }
        deadLetters.withLock { d in for (k, v) in counts { d[k, default: 0] += v } }
    }

    public var deadLetterTotal: Int { deadLetters.withLock { $0.values.reduce(0, +) } }
    public var deadLettersByReason: [String: Int] { deadLetters.withLock { $0 } }

    public func recordCommit(micros: Int) {
        commits.add(1, ordering: .relaxed)
        commitMicrosTotal.add(micros, ordering: .relaxed)
        var current = commitMicrosMax.load(ordering: .relaxed)
        while micros > current {
            let (exchanged, original) = commitMicrosMax.compareExchange(expected: current, desired: micros, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
    }

    /// A commit succeeded: counts it and stamps the wall-clock time alerts compare against.
    public func recordCommitSucceeded(micros: Int) {
        recordCommit(micros: micros)
        lastCommitUnixSeconds.store(Int(time(nil)), ordering: .relaxed)
    }

    func noteFirstRecord() {
        guard firstRecordNanos.load(ordering: .relaxed) == 0 else { return }
        _ = firstRecordNanos.compareExchange(expected: 0, desired: monotonicNanos(), ordering: .relaxed)
    }

    public func setLag(_ partition: String, _ value: Int64?) {
        lag.withLock { $0[partition] = value }
    }

    public func setTableRows(_ table: String, _ rows: Int) {
        tableRows.withLock { $0[table] = rows }
    }

    /// Records behind, summed over the partitions; nil until a commit has measured one
    /// (the high watermarks come with fetches), so a fresh start does not report "lag 0".
    public var totalLag: Int64? { lag.withLock { $0.isEmpty ? nil : $0.values.reduce(0, +) } }

    public func prometheusText(application: String) -> String {
        MetricFamily.prometheusText(families(application: application))
    }

    /// Every metric with its current value; reads the atomics and copies the two keyed maps,
    /// so a scrape never waits for a stream thread longer than one dictionary update.
    public func families(application: String) -> [MetricFamily] {
        let app = [(name: "application", value: application)]
        func one(_ name: String, _ kind: MetricFamily.Kind, _ help: String, _ value: MetricFamily.Value) -> MetricFamily {
            MetricFamily(name: name, kind: kind, help: help, samples: [.init(labels: app, value: value)])
        }
        func count(_ atomic: borrowing Atomic<Int>) -> MetricFamily.Value { .integer(atomic.load(ordering: .relaxed)) }
        func seconds(micros atomic: borrowing Atomic<Int>) -> MetricFamily.Value { .real(Double(atomic.load(ordering: .relaxed)) / 1e6) }
        let dl = deadLettersByReason
        let lags = lag.withLock { $0 }.sorted { $0.key < $1.key }
        let rows = tableRows.withLock { $0 }.sorted { $0.key < $1.key }
        return [
            one("eddy_records_in_total", .counter, "Records consumed from the source topic.", count(recordsIn)),
            one("eddy_records_processed_total", .counter, "Records that passed validation and went through the topology.", count(recordsProcessed)),
            one("eddy_redis_writes_total", .counter, "Redis write commands sent (records out).", count(redisWrites)),
            one("eddy_redis_fenced_blocks_total", .counter, "Blocks of Redis writes refused because Redis already held a later input position (replays after a restart or migration).",
                count(fencedWrites)),
            MetricFamily(name: "eddy_dead_letters_total", kind: .counter, help: "Records sent to the dead-letter topic, by reason.",
                         samples: DeadLetterReason.Category.allCases.map {
                             .init(labels: app + [(name: "reason", value: $0.rawValue)], value: .integer(dl[$0.rawValue] ?? 0))
                         }),
            one("eddy_commits_total", .counter, "Commits (Redis view, RocksDB batch with offsets, group offsets).", count(commits)),
            one("eddy_commit_latency_seconds_sum", .counter, "Total time spent committing.", seconds(micros: commitMicrosTotal)),
            one("eddy_commit_latency_seconds_max", .gauge, "Longest commit since start.", seconds(micros: commitMicrosMax)),
            one("eddy_commit_failures_total", .counter, "Commit attempts that failed and were aborted (retried; nothing lost).", count(commitFailures)),
            one("eddy_transaction_timeouts_total", .counter, "Transactional steps abandoned after kafka.transaction_step_timeout_ms; the producer was replaced.",
                count(transactionTimeouts)),
            one("eddy_last_commit_timestamp_seconds", .gauge, "Unix time of the last successful commit (0: none yet).", count(lastCommitUnixSeconds)),
            one("eddy_redis_errors_total", .counter, "Redis commands or connections that failed (retried until Redis is back).", count(redisErrors)),
            one("eddy_redis_outages_total", .counter, "Redis outages: commit tails that failed and were retried until written (summed over threads).",
                count(redisOutages)),
            one("eddy_redis_outage", .gauge, "Stream threads paused now because Redis cannot take their last commit.", count(redisOutagesActive)),
            one("eddy_redis_outage_seconds_total", .counter, "Time stream threads spent paused for Redis outages (summed over threads).",
                seconds(micros: redisOutageMicros)),
            one("eddy_kafka_outages_total", .counter, "Spells of commits failing because the broker could not be reached (summed over threads).",
                count(kafkaOutages)),
            one("eddy_kafka_outage_seconds_total", .counter, "Time commits waited for an unreachable broker (summed over threads).",
                seconds(micros: kafkaOutageMicros)),
            one("eddy_rematerialized_tasks_total", .counter, "Tasks whose whole state was written to Redis again (Redis had lost the application's keys).",
                count(rematerializedTasks)),
            one("eddy_late_records_total", .counter, "Records later than their window's grace (dead-lettered with reason late), or than a top_k's grace for their epoch (skipped).", count(lateRecords)),
            one("eddy_top_k_pruned_total", .counter, "Neighbours a decay's top_k pruned from the store and Redis as epochs closed.", count(prunedNeighbours)),
            one("eddy_expired_groups_total", .counter, "Groups a state_ttl removed from the store and Redis after they were idle for it (event time).", count(expiredGroups)),
            MetricFamily(name: "eddy_table_rows", kind: .gauge, help: "Rows of each global table (every stream thread holds a copy).",
                         samples: rows.map { .init(labels: app + [(name: "table", value: $0.key)], value: .integer($0.value)) }),
            one("eddy_table_updates_total", .counter, "Global-table records applied after the start's load, summed over stream threads (each keeps a copy of every table).", count(tableUpdates)),
            one("eddy_table_invalid_records_total", .counter, "Global-table records skipped (no key, or a value that is not a JSON object), summed over stream threads.",
                count(invalidTableRecords)),
            one("eddy_rekeyed_source_records_total", .counter, "Source records whose Kafka key is not their key field's value (or none), re-keyed through <application>-source-repartition to the task of their key.",
                count(rekeyedSourceRecords)),
            one("eddy_join_misses_total", .counter, "Records a join found no table row for (dropped, passed with nulls or dead-lettered, as configured).",
                count(joinMisses)),
            MetricFamily(name: "eddy_consumer_lag", kind: .gauge, help: "Records between the committed position and the partition's high watermark.",
                         samples: lags.map { .init(labels: app + [(name: "partition", value: $0.key)], value: .integer(Int($0.value))) }),
        ]
    }
}

/// Nanoseconds on a monotonic clock.
public func monotonicNanos() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
