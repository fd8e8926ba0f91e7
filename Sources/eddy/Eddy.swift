import ArgumentParser
import EddyConfig
import EddyHTTP
import EddyStreams
import Foundation
import Logging

@main
struct Eddy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eddy",
        abstract: "Eddy: stateful stream processing on Kafka, RocksDB and Redis.",
        subcommands: [Run.self, Serve.self, Validate.self, Describe.self, Generate.self, Reset.self, Dump.self, Recommend.self, Promote.self, Eval.self, ConsumeCeiling.self, WriteCeilings.self])

    /// As ArgumentParser's own `main`, except that a config file that cannot be used is one
    /// line, `Error: file:line:col: field '…': message`, and exit status 64 (EX_USAGE, as
    /// ArgumentParser's validation errors) — without the usage text, which says nothing
    /// about a config file. Other failures keep ArgumentParser's handling: usage text only
    /// for real usage errors, exit status 1 for the rest.
    /// Every subcommand writes to sockets (broker, Redis, /metrics): none may die of SIGPIPE.
    static func main() {
        ProcessSignals.ignoreBrokenPipes()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}

func bootstrapLogging() {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = ProcessInfo.processInfo.environment["EDDY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        return LazyMetadataLogHandler(handler)
    }
}
