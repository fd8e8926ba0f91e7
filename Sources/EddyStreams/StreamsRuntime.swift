import EddyHTTP
import EddyKafka
import EddyRedis
import EddyState
import Foundation
import Logging

/// Runs a topology: the public entry point of the runtime (Kafka Streams' `KafkaStreams`).
///
///     let runtime = try StreamsRuntime(topology: topology, config: config, logger: logger)
///     let summary = try runtime.run()   // blocks until stopped or caught up
public final class StreamsRuntime: Sendable {
    public struct Summary: Sendable {
        public let recordsIn: Int
        public let recordsProcessed: Int
        public let deadLetters: Int
        public let deadLettersByReason: [String: Int]
        public let redisWrites: Int
        public let commits: Int
        /// Source records whose Kafka key was not their key field's value, re-keyed.
        public let rekeyedSourceRecords: Int
        /// From start to stop, including startup and the consumer-group join.
        public let seconds: Double
        /// From the first record received to the stop: the throughput that matters for a
        /// long-running process (startup happens once).
        public let processingSeconds: Double
        public var recordsPerSecond: Double { processingSeconds > 0 ? Double(recordsIn) / processingSeconds : 0 }
    }

    /// What threads get past `RuntimeConfig.stopTimeoutMs` (which bounds their last commit)
    /// to close their consumers and return.
    static let closeMargin: TimeInterval = 5

    public let topology: Topology
    public let config: RuntimeConfig
    public let metrics = StreamsMetrics()
    private let compiled: CompiledTopology
    private let untilCaughtUp: Bool
    private let rematerialize: Bool
    private let logger: Logger
    private let stop = DispatchSemaphore(value: 0)
    private let contextBox = LockedBox<RuntimeContext?>(nil)
    private let stopEarly = LockedBox(false)

    /// `rematerialize`: every task writes its whole state to Redis at its first commit
    /// (after Redis lost its data; a running process also detects that by itself).
    /// Also ignores SIGPIPE for the process (`ProcessSignals.ignoreBrokenPipes`): a peer
    /// that closes a socket must cost a failed write, not the process.
    public init(topology: Topology, config: RuntimeConfig, untilCaughtUp: Bool = false, rematerialize: Bool = false, logger: Logger) throws {
        ProcessSignals.ignoreBrokenPipes()
        self.topology = topology
        self.config = config
        self.untilCaughtUp = untilCaughtUp
        self.rematerialize = rematerialize
        self.logger = logger
        compiled = try TopologyCompiler.compile(topology)
    }

    /// Asks the runtime to commit, close and return from `run()` (signal handlers call this).
    public func requestStop() {
        stopEarly.value = true  // in case run() has not created its context yet
        contextBox.value?.requestStop()
        stop.signal()
    }

    /// Runs until `requestStop()`, or until every partition is caught up with
    /// `untilCaughtUp`. Throws on a startup failure or a fatal runtime failure.
    public func run() throws -> Summary {
        try LibrdkafkaVersion.checkSupported()
        logger.info("librdkafka \(LibrdkafkaVersion.string); application \(topology.application); source \(topology.source.topic) on \(config.bootstrapServers); \(config.processingGuarantee.rawValue)")
        if config.staticMembership, config.sessionTimeoutMs < RuntimeConfig.staticSessionFloorMs {
            logger.warning("kafka.static_membership with session_timeout_ms \(config.sessionTimeoutMs): a restarted process is away longer than that on Tansu 0.6.0 (it holds a static member's JoinGroup and SyncGroup 3 s each), is dropped, and the group can stall for good; use at least \(RuntimeConfig.staticSessionFloorMs) (README, \"librdkafka, Tansu and this machine\")")
        }
        // First, before anything needs tearing down: a taken port fails the start at once,
        // and /metrics answers during the group join and restore too.
        let metricsEndpoint = try startMetricsEndpoint()
        defer { metricsEndpoint?.stop() }
        let export = SwiftMetricsExport()
        defer { export.publish(metrics.families(application: topology.application)) }  // the final totals
        // Then everything outside the process that can be wrong — broker, Redis, the state
        // directory — before RocksDB opens: a RocksDB left open by an early throw aborted
        // in its teardown at exit.
        let source = topology.source.topic
        let admin = try KafkaAdmin(config: KafkaConfig(config.kafkaClientProperties))
        let partitionCount: Int?
        do {
            partitionCount = try admin.partitionCount(source)
        } catch {
            throw RuntimeError("the broker at \(config.bootstrapServers) (kafka.bootstrap_servers) did not answer: \(error)")
        }
        guard let partitions = partitionCount else {
            throw RuntimeError("source topic '\(source)' does not exist on \(config.bootstrapServers) (create it, e.g. with `eddy generate --topic \(source)`)")
        }
        let tablePartitionCounts = try compiled.tables.map { table -> Int in
            guard let count = try admin.partitionCount(table.topic) else {
                throw RuntimeError("table '\(table.name)': topic '\(table.topic)' does not exist on \(config.bootstrapServers) (create it, compacted: cleanup.policy=compact)")
            }
            return count
        }
        try admin.createTopic(topology.deadLetterTopic, partitions: partitions,
                              configs: ["cleanup.policy": "delete", "retention.ms": String(7 * 24 * 3600 * 1000)])
        var outputPartitionCounts: [String: Int] = [:]
        for topic in compiled.outputTopics {
            if let count = try admin.partitionCount(topic) {
                outputPartitionCounts[topic] = count
            } else {
                try admin.createTopic(topic, partitions: partitions, configs: ["cleanup.policy": "delete", "retention.ms": String(7 * 24 * 3600 * 1000)])
                logger.info("created output topic \(topic) (\(partitions) partitions, kept 7 days)")
                outputPartitionCounts[topic] = partitions
            }
        }
        try Changelogs.create(for: compiled, partitions: partitions, admin: admin)
        try Repartitions.create(for: compiled, partitions: partitions, admin: admin)
        // A task reads partition p of its topics together (the range assignor gives them to
        // one member): a repartition topic made with another partition count breaks that.
        for topic in Repartitions.topics(of: compiled) {
            if let count = try admin.partitionCount(topic), count != partitions {
                throw RuntimeError("\(topic) has \(count) partition(s) but \(source) has \(partitions): its tasks would not meet their keys; delete it (or run `eddy reset`) so Eddy creates it with \(partitions)")
            }
        }
        do {
            let ping = try RedisConnection(host: config.redisHost, port: config.redisPort, timeoutMs: config.redisTimeoutMs, credentials: config.redisCredentials).send("PING")
            if let error = ping.firstError { throw RedisError(error) }
        } catch {
            throw RuntimeError("Redis at \(config.redisHost):\(config.redisPort) is not usable: \(error)")
        }
        let statePath = URL(fileURLWithPath: config.stateDir).appendingPathComponent(topology.application).path
        do {
            try FileManager.default.createDirectory(atPath: statePath, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError("state.dir '\(config.stateDir)': cannot create \(statePath): \(fileSystemReason(error))")
        }
        let replayStart: ReplayStart?
        do {
            replayStart = try ReplayStart.load(stateDir: config.stateDir, application: topology.application)
        } catch {
            let path = ReplayStart.path(stateDir: config.stateDir, application: topology.application)
            throw RuntimeError("\(path) (written by eddy reset) cannot be read: \(fileSystemReason(error))")
        }
        let database: StateDatabase
        do {
            database = try StateDatabase(path: statePath, memoryBudgetBytes: config.memoryBudget.rocksDBBytes)
        } catch {
            throw RuntimeError("state.dir '\(config.stateDir)': cannot open the state in \(statePath): \(error)")
        }

        let context: RuntimeContext
        let threads: [StreamThread]
        do {
            context = RuntimeContext(topology: compiled, config: config, partitionCount: partitions, tablePartitionCounts: tablePartitionCounts,
                                     outputPartitionCounts: outputPartitionCounts, database: database, metrics: metrics,
                                     tracker: CatchUpTracker(partitionCount: partitions, threads: config.threads),
                                     untilCaughtUp: untilCaughtUp, rematerialize: rematerialize,
                                     replayStart: replayStart, logger: logger)
            threads = try (0..<config.threads).map { try StreamThread(id: $0, context: context) }
        } catch {
            database.close()  // no thread has started: nothing else uses it
            throw error
        }
        contextBox.value = context
        if stopEarly.value { context.requestStop() }

        let started = Date()
        threads.forEach { $0.start() }
        logger.info("\(threads.count) stream thread(s) started; \(partitions) partition(s); state in \(statePath)")

        var lastCount = 0
        var lastRekeyed = 0
        var lastReport = Date()
        var lastTrim = Date()
        while !context.stopRequested {
            _ = stop.wait(timeout: .now() + min(config.logIntervalSeconds, 0.2))
            // Every 5 s, on this otherwise idle thread: free memory back to the system. (Once a
            // second cost item-popularity ~12% of its events/s in one 6-round run; noisy.)
            if Date().timeIntervalSince(lastTrim) >= 5 {
                HeapTrim.trim()
                lastTrim = Date()
            }
            if Date().timeIntervalSince(lastReport) >= config.logIntervalSeconds {
                let count = metrics.recordsIn.load(ordering: .relaxed)
                let rate = Double(count - lastCount) / Date().timeIntervalSince(lastReport)
                logger.info("processed \(count) records (\(Int(rate))/s), lag \(metrics.totalLag.map(String.init) ?? "not yet known"), dead letters \(metrics.deadLetterTotal)")
                reportRekeyedRecords(&lastRekeyed)
                let rocksdb = database.memoryUsage
                logger.info("memory: write-back caches \(metrics.writeBackCacheBytes.load(ordering: .relaxed) >> 20) MB, RocksDB block cache \(rocksdb.blockCache >> 20) MB, memtables \(rocksdb.memtables >> 20) MB (budget \(config.memoryBudgetMB) MB)")
                export.publish(metrics.families(application: topology.application))
                lastCount = count
                lastReport = Date()
            }
        }
        // The last commits end by runtime.stop_timeout_ms (Kafka steps are cut short, Redis
        // gets its share of it); closing follows.
        let stopTimeout = Double(config.stopTimeoutMs) / 1000 + Self.closeMargin
        let deadline = DispatchTime.now() + stopTimeout
        for thread in threads where thread.finished.wait(timeout: deadline) == .timedOut {
            throw RuntimeError("stream thread \(thread.id) did not commit and close within \(Int(stopTimeout)) s (runtime.stop_timeout_ms and \(Int(Self.closeMargin)) s to close)")
        }
        reportRekeyedRecords(&lastRekeyed)
        // Processing ends when the last commit is done (threads finished), not before.
        let seconds = Date().timeIntervalSince(started)
        let first = metrics.firstRecordNanos.load(ordering: .relaxed)
        let processingSeconds = first == 0 ? 0 : Double(monotonicNanos() - first) / 1e9
        database.close()
        if let failure = context.failure { throw RuntimeError(failure) }
        return Summary(recordsIn: metrics.recordsIn.load(ordering: .relaxed),
                       recordsProcessed: metrics.recordsProcessed.load(ordering: .relaxed),
                       deadLetters: metrics.deadLetterTotal, deadLettersByReason: metrics.deadLettersByReason,
                       redisWrites: metrics.redisWrites.load(ordering: .relaxed),
                       commits: metrics.commits.load(ordering: .relaxed),
                       rekeyedSourceRecords: metrics.rekeyedSourceRecords.load(ordering: .relaxed), seconds: seconds,
                       processingSeconds: processingSeconds)
    }

    /// Says, when it grew, how many source records had a Kafka key other than their key
    /// field's value: they are counted right, at the cost of one more trip through Kafka.
    private func reportRekeyedRecords(_ last: inout Int) {
        let now = metrics.rekeyedSourceRecords.load(ordering: .relaxed)
        guard now > last else { return }
        last = now
        logger.info("\(now) source record(s) so far had a Kafka key other than their \(topology.source.keyField) (or none): re-keyed through \(Repartitions.topic(application: topology.application, node: TopologyCompiler.reservedNodeName)) to the task of their \(topology.source.keyField), one more trip through Kafka each; produce \(topology.source.topic) keyed by \(topology.source.keyField) to save it (eddy_rekeyed_source_records_total)")
    }

    /// Serves /metrics and /healthz on the HTTP server's threads (NIO's event loops and
    /// Swift's concurrency pool), never on a stream thread; nil when `metrics.port` is off.
    private func startMetricsEndpoint() throws -> HTTPServer? {
        guard let port = config.metricsPort else { return nil }
        let application = topology.application
        do {
            let server = try MetricsEndpoint.start(port: port, logger: logger) { [metrics] in
                metrics.prometheusText(application: application)
            }
            logger.info("metrics on http://\(server.host):\(server.port)/metrics")
            return server
        } catch {
            throw RuntimeError("metrics endpoint \(error) (choose another metrics.port or --metrics-port; 0 picks a free one)")
        }
    }
}

public struct RuntimeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
