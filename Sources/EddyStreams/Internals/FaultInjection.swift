import Foundation

/// Test-only crash points, so crash tests can kill the process exactly where a crash is
/// most dangerous instead of hoping a random SIGKILL lands there.
///
///     EDDY_FAULT=after-redis-write:0.3   # SIGKILL itself after 30% of the Redis view writes
///                                        # that wrote something, before the local state
///     EDDY_FAULT=after-kafka-commit:0.3  # after a Kafka commit that changed state, before
///                                        # the Redis write
///     EDDY_FAULT=during-restore:0.5      # after a restore applied its first records
///     EDDY_FAULT=before-kafka-commit:1   # with the attempt's records sent and delivered,
///                                        # before its transaction commits: an aborted
///                                        # attempt whose records a broker like Tansu
///                                        # 0.6.0 still delivers
struct FaultInjection: Sendable {
    enum Point: String, Sendable {
        case afterKafkaCommit = "after-kafka-commit"
        case afterRedisWrite = "after-redis-write"
        case duringRestore = "during-restore"
        case beforeKafkaCommit = "before-kafka-commit"
    }

    private let point: Point?
    private let probability: Double

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let parts = environment["EDDY_FAULT"]?.split(separator: ":") ?? []
        point = parts.first.flatMap { Point(rawValue: String($0)) }
        probability = parts.count > 1 ? Double(parts[1]) ?? 1 : 1
    }

    var isActive: Bool { point != nil }

    /// Whether `here` is the armed point (so a caller can prepare what the crash needs).
    func isArmed(at here: Point) -> Bool { point == here }

    /// Kills the process (as SIGKILL would: no cleanup, no flush) when armed for `here`.
    func maybeCrash(at here: Point) {
        guard point == here, Double.random(in: 0..<1) < probability else { return }
        FileHandle.standardError.write("EDDY_FAULT: killing the process at \(here.rawValue)\n".data(using: .utf8)!)
        kill(getpid(), SIGKILL)
    }
}
