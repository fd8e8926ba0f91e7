import Foundation
import XCTest

/// What `eddy run` must say about the faults of FaultIntegrationTests, in its log and in its
/// metrics: the lines and metric names the tests assert, in one place so that the runtime
/// and the tests stay aligned. Lines are matched as substrings of the log, so the runtime
/// may add a prefix (level, thread) and the text after the colon or number is free.
enum FaultLog {
    /// An outage of Redis begins: refused or reset connections, no answer within the
    /// runtime's timeout, or OOM replies. The stream threads stop consuming and retry.
    /// e.g. "Redis unavailable, pausing: redis 127.0.0.1:6379: Connection refused"
    static let redisOutageStarts = "Redis unavailable, pausing: "
    /// e.g. "Redis available again after 12.4 s"
    static let redisOutageEnds = "Redis available again after "
    /// The watermark keys of tasks that had written to Redis are gone (Redis came back
    /// without its data): the view is written again from RocksDB.
    /// e.g. "Redis lost the watermarks of 4 partition(s) (restarted without its data?): re-materializing the view from RocksDB"
    static let redisRematerializes = "re-materializing the view from RocksDB"
    /// The broker cannot be reached (every connection down, or a transaction step that
    /// timed out and was aborted).
    /// e.g. "Kafka unavailable, pausing: 1/1 brokers are down"
    static let kafkaOutageStarts = "Kafka unavailable, pausing: "
    /// e.g. "Kafka available again after 9.8 s"
    static let kafkaOutageEnds = "Kafka available again after "
    /// `--until-caught-up` cannot make its last commit reach Redis: it must exit non-zero
    /// and say so (instead of exiting 0 with nothing written).
    /// e.g. "cannot write the final state to Redis: OOM command not allowed when used memory > 'maxmemory'"
    static let finalStateNotWritten = "cannot write the final state to Redis"

    /// Counters (one sample per application) that must be above 0 after the fault.
    static let redisOutages = "eddy_redis_outages_total"
    static let redisOutageSeconds = "eddy_redis_outage_seconds_total"
    static let redisRematerializations = "eddy_redis_rematerializations_total"
    static let kafkaOutages = "eddy_kafka_outages_total"
    static let kafkaOutageSeconds = "eddy_kafka_outage_seconds_total"

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

    /// Asserts that `log` holds every line of `kinds` and that `metrics` (a /metrics
    /// response of the life that saw `kindsThisLife`) counts them.
    static func assertReported(_ kinds: Set<Fault.Kind>, kindsThisLife: Set<Fault.Kind>, log: String, metrics: String,
                               application: String, file: StaticString = #filePath, line: UInt = #line) {
        let missingLines = kinds.sorted { $0.rawValue < $1.rawValue }.flatMap { kind in
            lines(after: kind).filter { !log.contains($0) }.map { "after \(kind.rawValue) the log lacks \"\($0)\"" }
        }
        let missingCounts = kindsThisLife.sorted { $0.rawValue < $1.rawValue }.flatMap { kind in
            counters(after: kind).filter { (counter($0, application: application, in: metrics) ?? 0) <= 0 }
                .map { "after \(kind.rawValue) /metrics lacks \($0){application=\"\(application)\"} above 0" }
        }
        if !missingLines.isEmpty || !missingCounts.isEmpty {
            XCTFail((missingLines + missingCounts).joined(separator: "; ") + "; the log's last lines:\n\(log.suffix(3000))", file: file, line: line)
        }
    }

    /// The value of `name{application="…"}` in a Prometheus text response.
    static func counter(_ name: String, application: String, in metrics: String) -> Double? {
        let prefix = "\(name){application=\"\(application)\"} "
        return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }
}
