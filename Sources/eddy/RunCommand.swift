import ArgumentParser
import EddyConfig
import EddyStreams
import Foundation
import Logging

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a topology as a long-running consumer (SIGINT/SIGTERM: commit and stop; a second one exits at once).")

    @Argument(help: "The topology file.") var topology: String
    @Option(help: "The runtime config file.") var config: String = "configs/local.yaml"
    @Flag(help: "Stop once every source partition has been processed to its end.") var untilCaughtUp = false
    @Option(help: "Stream threads (overrides the config).") var threads: Int?
    @Option(help: "State directory (overrides the config).") var stateDir: String?
    @Option(help: "Metrics port, 0 for any free port (overrides the config).") var metricsPort: Int?
    @Flag(help: "Print the final summary as one JSON object.") var json = false
    @Option(help: "Reset first (like `eddy reset`), then replay from: earliest, an ISO 8601 time, or P:O[,P:O…].")
    var from: String?
    @Flag(help: "Write the whole local state to Redis again at start (after Redis lost its data; a running process detects that by itself).")
    var rematerialize = false

    /// The overrides get the config file's limits: they bypass its validation.
    func validate() throws {
        if let threads, !(1...ConfigLimits.maxThreads).contains(threads) {
            throw ValidationError("--threads must be 1 to \(ConfigLimits.maxThreads), got \(threads)")
        }
        if let stateDir, stateDir.allSatisfy(\.isWhitespace) { throw ValidationError("--state-dir must not be empty") }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be 0 to 65535, got \(metricsPort)")
        }
    }

    func run() throws {
        bootstrapLogging()
        let logger = Logger(label: "eddy")
        let topology = try TopologyFile.load(path: self.topology)
        var runtimeConfig = try RuntimeConfigFile.load(path: config)
        if let threads { runtimeConfig.threads = threads }
        if let stateDir { runtimeConfig.stateDir = stateDir }
        if let metricsPort { runtimeConfig.metricsPort = metricsPort }

        let runtime = try StreamsRuntime(topology: topology, config: runtimeConfig, untilCaughtUp: untilCaughtUp, rematerialize: rematerialize, logger: logger)
        // Before the reset: it talks to the broker and Redis too, and may wait on them.
        let signals = ProcessSignals.handleStopSignals(logger: logger) { runtime.requestStop() }
        defer { signals.forEach { $0.cancel() } }
        if let from {
            let summary = try StreamsReset.run(topology: topology, config: runtimeConfig, to: try parseReplayPoint(from))
            logger.info("reset to \(from): local state \(summary.stateRemoved ? "removed" : "was absent"), \(summary.redisKeysDeleted) Redis key(s) deleted")
        }

        let summary: StreamsRuntime.Summary
        do {
            summary = try runtime.run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode.failure
        }
        if json {
            let object: [String: Any] = [
                "records_in": summary.recordsIn, "records_processed": summary.recordsProcessed,
                "dead_letters": summary.deadLetters, "dead_letters_by_reason": summary.deadLettersByReason,
                "redis_writes": summary.redisWrites, "commits": summary.commits,
                "rekeyed_source_records": summary.rekeyedSourceRecords,
                "seconds": summary.seconds, "processing_seconds": summary.processingSeconds,
                "records_per_second": summary.recordsPerSecond,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("""
                \(topology.application): \(summary.recordsIn) records in \(String(format: "%.1f", summary.seconds)) s; \
                \(Int(summary.recordsPerSecond)) records/s from the first record on; \(summary.recordsProcessed) processed, \
                \(summary.deadLetters) dead-lettered; \(summary.redisWrites) Redis writes in \(summary.commits) commits
                """)
        }
    }
}
