import ArgumentParser
import EddyConfig
import EddyRedis
import EddyStreams
import Foundation

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewind an application: set where it starts again, discard its local state and its Redis keys.",
        discussion: """
            Like Kafka's streams application reset tool. Stop every `eddy run` of the application first.
            Then `eddy run` replays from the chosen point and rebuilds the same state.
            """)

    @Argument(help: "The topology file.") var topology: String
    @Option(help: "The runtime config file.") var config: String = "configs/local.yaml"
    @Flag(help: "Start again from the earliest offset of every partition.") var toEarliest = false
    @Option(help: "Start again from the first record at or after this time (ISO 8601, e.g. 2026-11-22T10:00:00Z).")
    var toDatetime: String?
    @Option(parsing: .singleValue, help: "Start partition P at offset O (P:O; repeatable; other partitions start at the earliest).")
    var toOffset: [String] = []

    func validate() throws {
        let chosen = [toEarliest, toDatetime != nil, !toOffset.isEmpty].filter { $0 }.count
        if chosen != 1 { throw ValidationError("choose exactly one of --to-earliest, --to-datetime, --to-offset") }
    }

    func run() throws {
        let target: StreamsReset.Target
        if toEarliest {
            target = .earliest
        } else if let toDatetime {
            target = try parseReplayPoint(toDatetime)
        } else {
            target = try parseReplayPoint(toOffset.joined(separator: ","))
        }
        let topology = try TopologyFile.load(path: self.topology)
        let summary = try StreamsReset.run(topology: topology, config: try RuntimeConfigFile.load(path: config), to: target)
        let positions = summary.start.partitions.sorted { $0.key < $1.key }
            .map { "\($0.key)@\($0.value.offset)" + ($0.value.minTimestamp.map { " (records from \($0) ms)" } ?? "") }
        print("""
            \(topology.application) reset: \(summary.start.topic) starts at \(positions.joined(separator: ", ")); \
            local state \(summary.stateRemoved ? "removed" : "was absent"); \(summary.redisKeysDeleted) Redis key(s) deleted
            """)
    }
}

/// `earliest`, an ISO 8601 time, or `P:O[,P:O…]`.
func parseReplayPoint(_ text: String) throws -> StreamsReset.Target {
    if text == "earliest" { return .earliest }
    if text.contains(":"), text.split(separator: ",").allSatisfy({ $0.split(separator: ":").count == 2 && $0.split(separator: ":").allSatisfy { Int64($0) != nil } }) {
        var offsets: [Int32: Int64] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: ":")
            offsets[Int32(parts[0])!] = Int64(parts[1])!
        }
        return .offsets(offsets)
    }
    let iso = ISO8601DateFormatter()
    iso.formatOptions = [.withInternetDateTime]
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = iso.date(from: text) ?? fractional.date(from: text) {
        return .timestamp(Int64(date.timeIntervalSince1970 * 1000))
    }
    throw ValidationError("'\(text)' is not a replay point: use earliest, an ISO 8601 time like 2026-11-22T10:00:00Z, or P:O[,P:O…]")
}

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the application's Redis keys in a canonical form (sorted, TTLs left out), to compare runs.",
        discussion: "eddy dump TOPOLOGY | sha256sum — a replay of the same input gives the same digest.")

    @Argument(help: "The topology file.") var topology: String
    @Option(help: "The runtime config file.") var config: String = "configs/local.yaml"

    func run() throws {
        let runtime = try RuntimeConfigFile.load(path: config)
        let redis = try RedisConnection(host: runtime.redisHost, port: runtime.redisPort, timeoutMs: runtime.redisTimeoutMs, credentials: runtime.redisCredentials)
        for line in try RedisView(try TopologyFile.load(path: topology)).dump(from: redis) { print(line) }
    }
}
