import Foundation

/// Runs the real `eddy` executable (built with the tests) as a child process.
struct EddyCLI {
    /// The eddy binary built with the tests, or `EDDY_BINARY` (scripts use a release build).
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["EDDY_BINARY"] { return URL(fileURLWithPath: path) }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("eddy")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        let xctestDir = Bundle.allBundles.map(\.bundleURL).first { $0.pathExtension == "xctest" }?.deletingLastPathComponent()
        if let dir = xctestDir, FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("eddy").path) {
            return dir.appendingPathComponent("eddy")
        }
        return LocalServices.packageRoot.appendingPathComponent(".build/debug/eddy")
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs to completion (with a time limit) and captures its output.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 300) throws -> Result {
        let running = try start(arguments, environment: environment)
        return try running.wait(timeout: timeout)
    }

    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Running {
        let p = Process()
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        p.executableURL = executable
        p.arguments = arguments
        p.currentDirectoryURL = LocalServices.packageRoot
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let out = dir.appendingPathComponent("stdout"), err = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        return Running(process: p, stdoutURL: out, stderrURL: err)
    }

    final class Running {
        let process: Process
        let stdoutURL: URL
        let stderrURL: URL
        init(process: Process, stdoutURL: URL, stderrURL: URL) {
            self.process = process
            self.stdoutURL = stdoutURL
            self.stderrURL = stderrURL
        }

        /// Lossy: a log cut mid-character by SIGKILL must still be readable.
        var stderr: String { (try? Data(contentsOf: stderrURL)).map { String(decoding: $0, as: UTF8.self) } ?? "" }

        func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

        var isRunning: Bool { process.isRunning }

        /// Ended by SIGKILL (from a test, or from the process itself through EDDY_FAULT).
        var wasKilled: Bool { !process.isRunning && process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL }

        /// How it ended, for failure messages: "running", "exit status N" or "signal N".
        var ending: String {
            if process.isRunning { return "running" }
            return "\(process.terminationReason == .exit ? "exit status" : "signal") \(process.terminationStatus)"
        }

        func wait(timeout: TimeInterval) throws -> Result {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
                throw ServiceError("eddy did not finish within \(Int(timeout)) s; stderr:\n\(EddyCLI.logTail(stderr))")
            }
            return Result(status: process.terminationStatus,
                          stdout: (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "", stderr: stderr)
        }
    }

    /// The end of an `eddy` log without librdkafka's own lines (`%6|…`), which an outage
    /// repeats many times a second and which would hide Eddy's in a failure message.
    static func logTail(_ log: String, _ characters: Int = 3000) -> String {
        String(log.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("%") }
            .joined(separator: "\n").suffix(characters))
    }
}
