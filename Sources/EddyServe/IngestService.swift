import EddyKafka
import EddyStreams
import Foundation
import Logging
import Synchronization

/// Validates events against the topology's source and publishes the valid ones to its
/// topic, keyed by its key field, returning only once the broker acknowledged them (or gave
/// up): an accepted event is on the broker, so nothing a client was told is accepted can be
/// lost by this process.
final class IngestService: Sendable {
    struct Rejection: Equatable {
        let index: Int
        let reason: String
        let message: String
    }

    struct Failure: Equatable {
        let index: Int
        let reason: String
        /// It may be on the broker even so (sent, then timed out waiting for the answer).
        let possiblyWritten: Bool
    }

    struct Outcome {
        var accepted = 0
        var rejected: [Rejection] = []
        var failed: [Failure] = []
    }

    let config: ServeConfig.Ingest
    let topic: String
    /// A single event's size limit (the source's `max_value_bytes`).
    let maxEventBytes: Int
    let metrics: ServeMetrics
    private let validators: ValidatorPool
    /// What a valid event looks like (the OpenAPI document's event schema).
    let eventShape: OpenAPIDocument.EventShape
    private let producer: Mutex<AcknowledgedProducer>
    private let makeProducer: @Sendable () throws -> AcknowledgedProducer
    private let logger: Logger
    /// When the last delivery succeeded and failed (monotonic ns; 0: never), for `/readyz`.
    private let lastDelivered = Atomic<Int>(0)
    private let lastFailed = Atomic<Int>(0)
    /// Whether the source topic is known to exist (checked, or created, on the broker).
    private let topicKnown = Atomic<Bool>(false)

    /// Builds the validators and the producer (the throwing part), then the service. A
    /// factory and a private init that cannot throw: Swift 6.3's optimizer crashes on a
    /// throwing init of a class with Mutex and Atomic members.
    static func make(topology: Topology, config: ServeConfig.Ingest, kafka: KafkaConfig, metrics: ServeMetrics, logger: Logger) throws -> IngestService {
        let eventTypeField = config.eventTypeField
        let first = try EventValidator(topology: topology, eventTypeField: eventTypeField)
        let makeProducer: @Sendable () throws -> AcknowledgedProducer = {
            try AcknowledgedProducer(config: kafka, deliveryTimeoutMs: config.publishTimeoutMs, maxQueued: config.maxQueuedEvents)
        }
        let validators = ValidatorPool(first: first) { try EventValidator(topology: topology, eventTypeField: eventTypeField) }
        let shape = OpenAPIDocument.EventShape(required: first.requiredFields, numeric: first.numericFields, timestamp: first.timestampField,
                                               timestampRequired: !config.serverTimestamp, maxBatchEvents: config.maxBatchEvents)
        let service = IngestService(config: config, topic: first.sourceTopic, maxEventBytes: first.maxEventBytes, eventShape: shape, validators: validators,
                                    producer: try makeProducer(), makeProducer: makeProducer, metrics: metrics, logger: logger)
        service.keepTopic(kafka: kafka)
        return service
    }

    /// Checks (or creates) the source topic now; when the broker cannot be asked, keeps
    /// trying every 2 s on a thread of its own, and once the topic is there starts a fresh
    /// producer (the old one learnt "unknown topic" and kept failing). Until then events get
    /// 503 saying why.
    private func keepTopic(kafka: KafkaConfig) {
        if Self.ensureTopic(topic, kafka: kafka, partitions: config.partitions, logger: logger) {
            topicKnown.store(true, ordering: .relaxed)
            return
        }
        Thread.detachNewThread { [self] in
            while !Self.ensureTopic(topic, kafka: kafka, partitions: config.partitions, logger: logger, quiet: true) { sleep(2) }
            replaceProducer(reason: "the source topic \(topic) is on the broker now")
            topicKnown.store(true, ordering: .relaxed)
        }
    }

    private init(config: ServeConfig.Ingest, topic: String, maxEventBytes: Int, eventShape: OpenAPIDocument.EventShape, validators: ValidatorPool, producer: AcknowledgedProducer,
                 makeProducer: @escaping @Sendable () throws -> AcknowledgedProducer, metrics: ServeMetrics, logger: Logger) {
        self.config = config
        self.topic = topic
        self.maxEventBytes = maxEventBytes
        self.validators = validators
        self.eventShape = eventShape
        self.producer = Mutex(producer)
        self.makeProducer = makeProducer
        self.metrics = metrics
        self.logger = logger
    }

    /// Creates the source topic when it does not exist. A broker that does not answer is
    /// not fatal: serve starts, answers 503 until the broker is back, and says so.
    @discardableResult
    private static func ensureTopic(_ topic: String, kafka: KafkaConfig, partitions: Int, logger: Logger, quiet: Bool = false) -> Bool {
        var config = kafka
        // A producer's metadata request would otherwise create the topic with the broker's
        // defaults before we can create it with ours.
        config["allow.auto.create.topics"] = "false"
        do {
            let admin = try KafkaAdmin(config: config)
            guard try admin.partitionCount(topic, timeoutMs: 5_000) == nil else { return true }
            try admin.createTopic(topic, partitions: partitions, configs: ["cleanup.policy": "delete", "retention.ms": "-1"])  // as eddy generate
            logger.info("created the source topic \(topic) with \(partitions) partitions (serve.ingest.partitions)")
            return true
        } catch {
            if !quiet {
                logger.warning("could not check or create the source topic \(topic): \(error); events get 503 until the broker answers (retrying every 2 s)")
            }
            return false
        }
    }

    func close() { producer.withLock { $0 }.close() }

    var queueDepth: Int { producer.withLock { $0 }.queueDepth }

    /// Whether the broker is taking events: nothing failed since the last acknowledgement,
    /// or the last failure is older than `readinessMemory` — a serve taken out of a load
    /// balancer gets no events to show it recovered, so a failure must not keep it out.
    var isPublishing: Bool {
        let failed = lastFailed.load(ordering: .relaxed)
        return failed <= lastDelivered.load(ordering: .relaxed) || monotonicNanos() - failed > Self.readinessMemoryNanos
    }

    static let readinessMemoryNanos = 10 * 1_000_000_000

    /// Validates and publishes `events`; the outcome names them by their `index`.
    func ingest(_ events: [EventBatch.Event]) async -> Outcome {
        var outcome = Outcome()
        var valid: [(key: [UInt8], value: [UInt8])] = []
        var validIndex: [Int] = []
        var validTypes: [String?] = []
        let now = config.serverTimestamp ? Int64(Date().timeIntervalSince1970 * 1000) : nil
        do {
            let validator = try validators.take()
            defer { validators.give(validator) }
            for event in events {
                switch validator.validate(Array(event.bytes), serverTimeMs: now) {
                case .success(let ok):
                    valid.append((ok.key, ok.value))
                    validIndex.append(event.index)
                    validTypes.append(ok.eventType)
                case .failure(let bad):
                    outcome.rejected.append(Rejection(index: event.index, reason: bad.reason, message: bad.message))
                    metrics.rejected(reason: bad.reason, eventType: bad.eventType)
                }
            }
        } catch {
            // A validator is made from a topology that compiled at start: this cannot fail
            // unless memory runs out; say so rather than accept unchecked events.
            for event in events { outcome.failed.append(Failure(index: event.index, reason: "validator: \(error)", possiblyWritten: false)) }
            return outcome
        }
        guard !valid.isEmpty else { return outcome }
        guard topicKnown.load(ordering: .relaxed) else {
            let reason = "the broker has not answered since serve started, so the source topic \(topic) is not known to exist yet (serve retries every 2 s)"
            outcome.failed = validIndex.map { Failure(index: $0, reason: reason, possiblyWritten: false) }
            metrics.publishFailures.add(valid.count, ordering: .relaxed)
            lastFailed.store(monotonicNanos(), ordering: .relaxed)
            return outcome
        }
        let current = producer.withLock { $0 }
        let started = ContinuousClock.now
        let results = await current.publish(topic: topic, valid)
        metrics.publishLatency.observe(seconds: (ContinuousClock.now - started).seconds)
        var failures = 0
        for (j, result) in results.enumerated() {
            switch result {
            case .delivered:
                outcome.accepted += 1
                metrics.accepted(eventType: validTypes[j])
            case .failed(let reason, let possiblyWritten):
                failures += 1
                outcome.failed.append(Failure(index: validIndex[j], reason: reason, possiblyWritten: possiblyWritten))
            }
        }
        let stamp = monotonicNanos()
        if outcome.accepted > 0 { lastDelivered.store(stamp, ordering: .relaxed) }
        if failures > 0 {
            lastFailed.store(stamp, ordering: .relaxed)
            metrics.publishFailures.add(failures, ordering: .relaxed)
            replaceIfFatal(current)
        }
        return outcome
    }

    /// An idempotent producer that hit a fatal error refuses every later record: swap in a
    /// new one (once, however many requests saw the error) and close the old one aside.
    private func replaceIfFatal(_ failed: AcknowledgedProducer) {
        guard let reason = failed.fatalError else { return }
        replaceProducer(reason: "ingest producer failed for good (\(reason))", replacing: failed)
    }

    /// Swaps in a new producer (once, however many requests asked: only while `replacing`,
    /// if given, is still the current one) and closes the old one aside.
    private func replaceProducer(reason: String, replacing expected: AcknowledgedProducer? = nil) {
        let old: AcknowledgedProducer? = producer.withLock { current in
            guard expected.map({ current === $0 }) ?? true, let fresh = try? makeProducer() else { return nil }
            defer { current = fresh }
            return current
        }
        guard let old else { return }
        metrics.producerReplacements.add(1, ordering: .relaxed)
        logger.log(level: expected == nil ? .info : .error, "\(reason); replaced the producer")
        Thread.detachNewThread { old.close(timeoutMs: 0) }
    }
}

/// Validators for concurrent requests: each request takes one and gives it back, so no two
/// tasks share one (`EventValidator` reuses its field slots). `@unchecked Sendable`: the
/// free list is only touched under the lock, and a validator taken out belongs to its
/// taker alone until it is given back.
final class ValidatorPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [EventValidator]
    private let make: () throws -> EventValidator

    init(first: EventValidator, make: @escaping () throws -> EventValidator) {
        free = [first]
        self.make = make
    }

    func take() throws -> EventValidator {
        lock.lock()
        let validator = free.popLast()
        lock.unlock()
        return try validator ?? make()
    }

    func give(_ validator: EventValidator) {
        lock.lock()
        free.append(validator)
        lock.unlock()
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
