import Synchronization

/// The process's metrics, rendered in Prometheus' text format at `/metrics`.
///
/// Stream threads add per batch or per commit, never per record. `Sendable`: counters are
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
    /// Transactional steps that did not finish within `kafka.transaction_timeout_ms` and
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
    /// When the first record arrived (ns on the continuous clock; 0: none yet), so throughput
    /// can leave out startup and the consumer-group join.
    let firstRecordNanos = Atomic<Int>(0)
    private let deadLetters = Mutex<[String: Int]>([:])
    private let lag = Mutex<[String: Int64]>([:])

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

    /// Records behind, summed over the partitions; nil until a commit has measured one
    /// (the high watermarks come with fetches), so a fresh start does not report "lag 0".
    public var totalLag: Int64? { lag.withLock { $0.isEmpty ? nil : $0.values.reduce(0, +) } }

    public func prometheusText(application: String) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name){application=\"\(application)\"\(labels)} \(value)\n" }
        }
        metric("eddy_records_in_total", "counter", "Records consumed from the source topic.", [("", "\(recordsIn.load(ordering: .relaxed))")])
        metric("eddy_records_processed_total", "counter", "Records that passed validation and went through the topology.",
               [("", "\(recordsProcessed.load(ordering: .relaxed))")])
        metric("eddy_redis_writes_total", "counter", "Redis write commands sent (records out).", [("", "\(redisWrites.load(ordering: .relaxed))")])
        metric("eddy_redis_fenced_blocks_total", "counter", "Blocks of Redis writes refused because Redis already held a later input position (replays after a restart or migration).",
               [("", "\(fencedWrites.load(ordering: .relaxed))")])
        let dl = deadLettersByReason
        metric("eddy_dead_letters_total", "counter", "Records sent to the dead-letter topic, by reason.",
               DeadLetterReason.Category.allCases.map { (",reason=\"\($0.rawValue)\"", "\(dl[$0.rawValue] ?? 0)") })
        metric("eddy_commits_total", "counter", "Commits (Redis view, RocksDB batch with offsets, group offsets).",
               [("", "\(commits.load(ordering: .relaxed))")])
        metric("eddy_commit_latency_seconds_sum", "counter", "Total time spent committing.",
               [("", "\(Double(commitMicrosTotal.load(ordering: .relaxed)) / 1e6)")])
        metric("eddy_commit_latency_seconds_max", "gauge", "Longest commit since start.",
               [("", "\(Double(commitMicrosMax.load(ordering: .relaxed)) / 1e6)")])
        metric("eddy_commit_failures_total", "counter", "Commit attempts that failed and were aborted (retried; nothing lost).",
               [("", "\(commitFailures.load(ordering: .relaxed))")])
        metric("eddy_transaction_timeouts_total", "counter", "Transactional steps abandoned after kafka.transaction_timeout_ms; the producer was rebuilt.",
               [("", "\(transactionTimeouts.load(ordering: .relaxed))")])
        metric("eddy_last_commit_timestamp_seconds", "gauge", "Unix time of the last successful commit (0: none yet).",
               [("", "\(lastCommitUnixSeconds.load(ordering: .relaxed))")])
        metric("eddy_redis_errors_total", "counter", "Redis commands or connections that failed (retried until Redis is back).",
               [("", "\(redisErrors.load(ordering: .relaxed))")])
        metric("eddy_redis_outages_total", "counter", "Redis outages: commit tails that failed and were retried until written (summed over threads).",
               [("", "\(redisOutages.load(ordering: .relaxed))")])
        metric("eddy_redis_outage", "gauge", "Stream threads paused now because Redis cannot take their last commit.",
               [("", "\(redisOutagesActive.load(ordering: .relaxed))")])
        metric("eddy_redis_outage_seconds_total", "counter", "Time stream threads spent paused for Redis outages (summed over threads).",
               [("", "\(Double(redisOutageMicros.load(ordering: .relaxed)) / 1e6)")])
        metric("eddy_kafka_outages_total", "counter", "Spells of commits failing because the broker could not be reached (summed over threads).",
               [("", "\(kafkaOutages.load(ordering: .relaxed))")])
        metric("eddy_kafka_outage_seconds_total", "counter", "Time commits waited for an unreachable broker (summed over threads).",
               [("", "\(Double(kafkaOutageMicros.load(ordering: .relaxed)) / 1e6)")])
        metric("eddy_rematerialized_tasks_total", "counter", "Tasks whose whole state was written to Redis again (Redis had lost the application's keys).",
               [("", "\(rematerializedTasks.load(ordering: .relaxed))")])
        let lags = lag.withLock { $0 }.sorted { $0.key < $1.key }
        metric("eddy_consumer_lag", "gauge", "Records between the committed position and the partition's high watermark.",
               lags.map { (",partition=\"\($0.key)\"", "\($0.value)") })
        return out
    }
}

/// Nanoseconds on a monotonic clock.
func monotonicNanos() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
