import EddyKafka
import Foundation
import Logging

/// Keeps one stream thread's global tables current: reads every partition of their topics
/// from the beginning, outside the consumer group, to the end before the thread processes
/// anything (`bootstrap`), then whatever arrives, once per loop (`poll`).
/// Owned by its stream thread (or a test driver's caller).
final class GlobalTableReader {
    private let tables: [GlobalTable]
    private let reader: KafkaPartitionReader
    /// For each of `reader.partitions`, its table.
    private let tableOfPartition: [Int]
    private let batch = ConsumedBatch(capacity: 1024)
    private let metrics: StreamsMetrics
    private let logger: Logger
    private var invalidLogged: [Int]
    /// Partitions whose read error was logged (once each, until they deliver again).
    private var erroring = Set<Int>()

    /// `partitionCounts`: each table's topic's partitions.
    init(tables: [GlobalTable], partitionCounts: [Int], kafka: KafkaConfig, metrics: StreamsMetrics, logger: Logger) throws {
        self.tables = tables
        var partitions: [(TopicPartition, Int64)] = []
        var tableOfPartition: [Int] = []
        for (t, table) in tables.enumerated() {
            for p in 0..<partitionCounts[t] {
                partitions.append((TopicPartition(table.topic, Int32(p)), KafkaOffset.beginning))
                tableOfPartition.append(t)
            }
        }
        var kafka = kafka
        // A table written outside transactions has nothing to hide; a transactional writer's
        // aborted rows are hidden by brokers that can (Tansu 0.6.0 cannot, see README).
        kafka["isolation.level"] = "read_committed"
        reader = try KafkaPartitionReader(config: kafka, from: partitions)
        self.tableOfPartition = tableOfPartition
        self.metrics = metrics
        self.logger = logger
        invalidLogged = Array(repeating: 0, count: tables.count)
    }

    deinit { batch.release() }

    /// A reader of the tables that joins read, with every row loaded; nil when there are
    /// none, or when the runtime stopped before the load finished. A table no join reads is
    /// not loaded.
    static func loaded(_ tables: [GlobalTable], context: RuntimeContext, logger: Logger) throws -> GlobalTableReader? {
        let used = tables.indices.filter { !tables[$0].columns.isEmpty }
        guard !used.isEmpty else { return nil }
        let config = context.config
        let reader = try GlobalTableReader(tables: used.map { tables[$0] }, partitionCounts: used.map { context.tablePartitionCounts[$0] },
                                           kafka: KafkaConfig(config.memoryBudget.consumerProperties(config.kafkaClientProperties)),
                                           metrics: context.metrics, logger: logger)
        return reader.bootstrap(shouldStop: { context.stopRequested }) ? reader : nil
    }

    /// Reads every partition to its end (as of now), so the first record processed sees the
    /// whole table. Returns false if `shouldStop` said so first.
    func bootstrap(shouldStop: () -> Bool) -> Bool {
        var atEnd = Set<Int>()
        let started = ContinuousClock.now
        var lastReport = started
        while atEnd.count < reader.partitions.count {
            if shouldStop() { return false }
            reader.read(into: batch, timeoutMs: 100)
            for i in 0..<batch.count {
                let message = batch[i]
                guard let p = reader.index(of: message) else { continue }
                if message.isPartitionEOF { atEnd.insert(p); continue }
                if message.isError { logError(message, partition: p); continue }
                atEnd.remove(p)
                erroring.remove(p)
                tables[tableOfPartition[p]].apply(key: message.key, value: message.valueOrNil)
            }
            if ContinuousClock.now - lastReport >= .seconds(5) {
                lastReport = .now
                logger.info("loading tables: \(summary); \(reader.partitions.count - atEnd.count) partition(s) not at their end yet")
            }
        }
        batch.release()
        reportAndLogInvalid()
        logger.info("tables loaded in \((ContinuousClock.now - started).seconds) s: \(summary)")
        return true
    }

    /// Applies what arrived since the last call, without waiting.
    func poll() {
        reader.read(into: batch, timeoutMs: 0)
        guard batch.count > 0 else { return }
        var applied = 0
        for i in 0..<batch.count {
            let message = batch[i]
            guard let p = reader.index(of: message) else { continue }
            if message.isError {
                if !message.isPartitionEOF { logError(message, partition: p) }
                continue
            }
            erroring.remove(p)
            tables[tableOfPartition[p]].apply(key: message.key, value: message.valueOrNil)
            applied += 1
        }
        batch.release()
        metrics.tableUpdates.add(applied, ordering: .relaxed)
        reportAndLogInvalid()
    }

    private func logError(_ message: KafkaMessage, partition p: Int) {
        if erroring.insert(p).inserted { logger.warning("reading table topic \(reader.partitions[p]): \(message.errorMessage) (retrying)") }
    }

    private var summary: String { tables.map { "\($0.name) \($0.count) rows" }.joined(separator: ", ") }

    private func reportAndLogInvalid() {
        for (t, table) in tables.enumerated() {
            metrics.setTableRows(table.name, table.count)
            if table.invalidRecords > invalidLogged[t] {
                metrics.invalidTableRecords.add(table.invalidRecords - invalidLogged[t], ordering: .relaxed)
                logger.warning("table \(table.name) (topic \(table.topic)): \(table.invalidRecords - invalidLogged[t]) record(s) skipped, the last: \(table.lastProblem ?? "")")
                invalidLogged[t] = table.invalidRecords
            }
        }
    }
}
