import ArgumentParser
import Dispatch
import EddyConfig
import EddyKafka
import EddyServe
import EddyStreams
import Foundation
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve HTTP: event ingest into the topology's source topic (POST /v1/events, /v1/events:batch), a user's state (GET /v1/users/ID/features), /healthz, /readyz, /metrics.",
        discussion: "Settings come from the config file's serve: section. SIGINT/SIGTERM: finish requests in flight and stop.")

    @Option(help: "The runtime config file (kafka: and serve: sections).") var config: String = "configs/local.yaml"
    @Option(help: "The topology whose source ingest validates and publishes for (overrides serve.ingest.topology).") var topology: String?
    @Option(help: "Port, 0 for any free port (overrides serve.port).") var port: Int?

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0 to 65535, got \(port)") }
    }

    func run() throws {
        bootstrapLogging()
        let logger = Logger(label: "eddy.serve")
        let runtime = try RuntimeConfigFile.load(path: config)
        var serve = try ServeConfigFile.load(path: config)
        if let port { serve.port = port }
        if let topology { serve.ingest.topology = topology }
        try ServeConfigFile.requireTopology(serve, file: config)
        let loaded = try serve.ingest.topology.map { try TopologyFile.load(path: $0) }
        let server: ServeServer
        do {
            server = try ServeServer(config: serve, topology: loaded, kafka: KafkaConfig(runtime.kafkaClientProperties),
                                 redis: RedisSettings(host: runtime.redisHost, port: runtime.redisPort, timeoutMs: runtime.redisTimeoutMs,
                                                      credentials: runtime.redisCredentials),
                                 logger: logger)
        } catch {
            logger.critical("\(error)")
            throw ExitCode.failure
        }
        if let loaded, serve.ingest.enabled {
            logger.info("ingest for \(loaded.application): events to topic \(loaded.source.topic), keyed by \(loaded.source.keyField)")
        }
        // The port line is what scripts wait for (and learn a free port from).
        print("eddy serve: listening on http://\(serve.host):\(server.port)")
        fflush(nil)
        let stopped = DispatchSemaphore(value: 0)
        let signals = ProcessSignals.handleStopSignals(logger: logger) { stopped.signal() }
        defer { signals.forEach { $0.cancel() } }
        stopped.wait()
        server.stop()
        logger.info("stopped")
    }
}
