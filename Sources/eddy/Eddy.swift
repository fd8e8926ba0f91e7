import ArgumentParser
import EddyConfig
import EddyStreams
import Foundation
import Logging

@main
struct Eddy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eddy",
        abstract: "Eddy: stateful stream processing on Kafka, RocksDB and Redis.",
        subcommands: [Run.self, Validate.self, Describe.self, Generate.self, Reset.self, Dump.self, ConsumeCeiling.self, WriteCeilings.self])

    /// Every subcommand writes to sockets (broker, Redis, /metrics): none may die of SIGPIPE.
    static func main() {
        ProcessSignals.ignoreBrokenPipes()
        main(nil)
    }
}

/// Loads a topology file, printing config errors as `file:line:col: field '…': message`.
func loadTopology(_ path: String) throws -> Topology {
    do {
        return try TopologyFile.load(path: path)
    } catch let error as ConfigError {
        throw ValidationError(error.description)
    }
}

func loadRuntimeConfig(_ path: String) throws -> RuntimeConfig {
    do {
        return try RuntimeConfigFile.load(path: path)
    } catch let error as ConfigError {
        throw ValidationError(error.description)
    }
}

func bootstrapLogging() {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = ProcessInfo.processInfo.environment["EDDY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        return handler
    }
}
