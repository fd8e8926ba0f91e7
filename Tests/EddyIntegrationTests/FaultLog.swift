import Foundation
import XCTest

/// What `eddy run` must say about the faults of FaultIntegrationTests, in its log and in its
/// metrics: the lines and metric names the tests assert, in one place so that the runtime
/// and the tests stay aligned. Lines are matched as substrings of the log, so the runtime
/// may add a prefix (level, thread) and the text after the colon or number is free.
enum FaultLog {
    /// An outage of Redis begins: refused or reset connections, no answer within the
    /// runtime's timeout, or OOM replies. Input pauses and the commit is retried.
    /// "Redis cannot take the last commit, pausing input until it does (retrying with back-off): …"
    static let redisOutageStarts = "Redis cannot take the last commit, pausing input"
    /// "Redis took the pending commit after 12.4 s of outage; resuming input"
    static let redisOutageEnds = "Redis took the pending commit after "
    /// The watermark keys of tasks that had written to Redis are gone (Redis came back
    /// without its data): their whole state is written again from RocksDB.
    /// "Redis lost the keys of [clicks-0, …] (their watermarks vanished: …): writing their whole state to Redis again"
    static let redisRematerializes = "whole state to Redis again"
    /// The broker cannot be reached: commits (transactional steps, with deadlines) fail.
    /// "Kafka unavailable, commits wait (everything stays pending and is retried): …"
    static let kafkaOutageStarts = "Kafka unavailable, "
    /// "Kafka available again after 9.8 s: committed"
    static let kafkaOutageEnds = "Kafka available again after "
    /// A run stopped by SIGTERM while Redis cannot take its last commit must exit non-zero
    /// and say so.
    /// "thread 0: stopped with the last commit not yet in Redis (Redis unavailable); the next start writes it from the changelogs"
    static let stoppedWithCommitUnwritten = "the last commit not yet in Redis"
    /// …and while the broker cannot take it, too.
    /// "thread 0: stopped with input not committed (the last commit failed or ran out of runtime.stop_timeout_ms; see above); the next start processes it again from the last commit"
    static let stoppedWithInputUncommitted = "stopped with input not committed"
    /// `--until-caught-up` whose commit Redis keeps refusing must end non-zero and say so
    /// (not 0 with Redis incomplete, nor wait for good).
    /// "thread 0: cannot write the final state to Redis: it has refused the last commit for 30.0 s: …"
    static let finalStateNotWritten = "cannot write the final state to Redis"
    /// At start-up, a Redis that refuses or never answers stops the process with this.
    /// "Redis at 127.0.0.1:6379 is not usable: …"
    static let redisNotUsableAtStart = "is not usable: "

    /// Counters (one sample per application) that must be above 0 after the fault.
    static let redisOutages = "eddy_redis_outages_total"
    static let redisOutageSeconds = "eddy_redis_outage_seconds_total"
    static let redisRematerializations = "eddy_rematerialized_tasks_total"
    static let kafkaOutages = "eddy_kafka_outages_total"
    static let kafkaOutageSeconds = "eddy_kafka_outage_seconds_total"

    /// What a life stopped by SIGTERM during a fault of `kind` must say if it exits
    /// non-zero (nil: any reason).
    static func stopReason(during kind: Fault.Kind) -> String? {
        switch kind {
        case .redisRestart, .redisRestartEmpty, .redisFull, .redisBlackhole: stoppedWithCommitUnwritten
        case .brokerDrop: stoppedWithInputUncommitted
        case .metricsResets: nil
        }
    }

    /// The lines a fault of `kind` must have logged once it is over.
    static func lines(after kind: Fault.Kind) -> [String] {
        switch kind {
        case .brokerDrop: [kafkaOutageStarts, kafkaOutageEnds]
        case .redisRestart, .redisFull, .redisBlackhole: [redisOutageStarts, redisOutageEnds]
        case .redisRestartEmpty: [redisOutageStarts, redisOutageEnds, redisRematerializes]
        case .metricsResets: []  // not an outage: the scraper's problem, nothing to report
        }
    }

    /// The counters a fault of `kind` must have raised in the life that saw it.
    static func counters(after kind: Fault.Kind) -> [String] {
        switch kind {
        case .brokerDrop: [kafkaOutages, kafkaOutageSeconds]
        case .redisRestart, .redisFull, .redisBlackhole: [redisOutages, redisOutageSeconds]
        case .redisRestartEmpty: [redisOutages, redisOutageSeconds, redisRematerializations]
        case .metricsResets: []
        }
    }

    /// What `log` and `metrics` (a /metrics response of the life that saw `kindsThisLife`)
    /// lack of the reports of `kinds`; empty when everything was reported.
    static func missing(_ kinds: Set<Fault.Kind>, kindsThisLife: Set<Fault.Kind>, log: String, metrics: String,
                        application: String) -> [String] {
        let missingLines = kinds.sorted { $0.rawValue < $1.rawValue }.flatMap { kind in
            lines(after: kind).filter { !log.contains($0) }.map { "after \(kind.rawValue) the log lacks \"\($0)\"" }
        }
        let missingCounts = kindsThisLife.sorted { $0.rawValue < $1.rawValue }.flatMap { kind in
            counters(after: kind).filter { (counter($0, application: application, in: metrics) ?? 0) <= 0 }
                .map { "after \(kind.rawValue) /metrics lacks \($0){application=\"\(application)\"} above 0" }
        }
        return missingLines + missingCounts
    }

    /// The value of `name{application="…"}` in a Prometheus text response.
    static func counter(_ name: String, application: String, in metrics: String) -> Double? {
        let prefix = "\(name){application=\"\(application)\"} "
        return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }
}
