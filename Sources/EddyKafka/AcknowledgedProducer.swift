import CRdKafka
import Foundation
import Synchronization

/// What became of one record given to `AcknowledgedProducer.publish`.
public enum PublishOutcome: Sendable, Equatable {
    /// The broker acknowledged it (`acks=all`: every in-sync replica has it).
    case delivered(partition: Int32, offset: Int64)
    /// Not acknowledged. `possiblyWritten`: it was sent and timed out waiting for the
    /// answer, so the broker may have it (a client that retries may write it twice).
    case failed(reason: String, possiblyWritten: Bool)
}

/// A producer for request handlers: many tasks publish concurrently and each waits, without
/// blocking a thread, until the broker acknowledged its records or gave up on them.
///
/// - Writes are `acks=all` and idempotent (librdkafka's retries never duplicate or reorder).
/// - Memory is bounded: at most `maxQueued` records wait for the broker; past that a record
///   fails at once ("queue full") instead of queueing, so an unreachable broker can never
///   grow the process.
/// - A record the broker does not acknowledge within `deliveryTimeoutMs` fails
///   (`message.timeout.ms`): an unreachable broker turns into failures within that time.
///
/// One background thread serves librdkafka's delivery reports (`rd_kafka_poll`); each report
/// completes its record's slot in a `PendingPublish`, and the last one resumes the waiting
/// task. `Sendable`: librdkafka's produce and poll calls are thread-safe, and the only
/// mutable state (each publish's outcomes) sits behind that publish's Mutex.
public final class AcknowledgedProducer: Sendable {
    nonisolated(unsafe) private let handle: OpaquePointer
    private let poller = Poller()

    /// `config` names the brokers (and security); the delivery properties are set here.
    public init(config: KafkaConfig, deliveryTimeoutMs: Int, maxQueued: Int) throws {
        var config = config
        config["acks"] = "all"
        config["enable.idempotence"] = "true"
        config["message.timeout.ms"] = String(deliveryTimeoutMs)
        config["queue.buffering.max.messages"] = String(maxQueued)
        // The record count bounds memory only with small records; 256 MiB bounds it for any.
        config["queue.buffering.max.kbytes"] = String(256 * 1024)
        // Requests wait for their acknowledgement, so the linger is latency every client
        // sees; but librdkafka sends one ProduceRequest per partition and batch, and with
        // idempotence at most 5 are in flight per broker: a shorter linger means more, smaller
        // requests that queue behind each other. Measured (Benchmarks/ingest's single-event
        // load, 28 connections, 4 partitions, Tansu on the same 2 cores): linger 1 ms
        // 12.7–14.0k events/s, p50 1.9–2.1 ms, p99 6.1–6.3 ms; 1.5 ms 11.0k/s, p50 2.5 ms,
        // p99 4.3–4.5 ms; 2 ms 8.4k/s, p50 3.3 ms, p99 4.9–5.1 ms.
        if config["linger.ms"] == nil { config["linger.ms"] = "1.5" }
        // Events for a topic that does not exist fail instead of creating it with the
        // broker's defaults.
        config["allow.auto.create.topics"] = "false"
        if config["partitioner"] == nil { config["partitioner"] = "murmur2_random" }  // as the Java client and KafkaProducer
        let conf = try config.makeNative()
        rd_kafka_conf_set_dr_msg_cb(conf, publishDeliveryCallback)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(poller).toOpaque())  // poller lives as long as the client
        handle = try makeClient(RD_KAFKA_PRODUCER, conf)
        // librdkafka's handle is thread-safe; the poller only polls it until close().
        nonisolated(unsafe) let client = handle
        let thread = Thread { [poller] in
            while !poller.stopping.load(ordering: .relaxed) { rd_kafka_poll(client, 100) }
            poller.done.signal()
        }
        thread.name = "eddy-ingest-acks"
        thread.start()
    }

    /// Refuses new publishes, waits for the enqueueing ones to finish, then up to
    /// `timeoutMs` for records in flight; records still unacknowledged then fail, so every
    /// waiting publish returns. The client itself is destroyed with the object, so a caller
    /// still holding it (reading `fatalError` after its records failed) never touches a
    /// freed handle.
    public func close(timeoutMs: Int32 = 5_000) {
        let first = poller.gate.withLock { gate in
            defer { gate.closed = true }
            return !gate.closed
        }
        guard first else { return }
        // An enqueueing loop holds the gate only while it hands records to librdkafka.
        while poller.gate.withLock({ $0.publishing }) > 0 { usleep(1_000) }
        poller.stopping.store(true, ordering: .relaxed)
        poller.done.wait()
        rd_kafka_flush(handle, timeoutMs)
        rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        rd_kafka_poll(handle, 0)  // the purged records' reports resume their publishers
    }

    deinit {
        close(timeoutMs: 0)
        rd_kafka_destroy(handle)
    }

    /// Why the producer can do nothing more (an idempotence failure librdkafka cannot repair,
    /// such as the broker losing the producer's state); nil while it works. Its owner then
    /// replaces it.
    /// Also set when the broker refused the producer's identity (fenced, unknown producer id,
    /// a stale epoch): librdkafka reports those per record and goes on failing, as Tansu
    /// 0.6.0 does after the epoch bump that follows records timing out (measured: every
    /// later record failed with PRODUCER_FENCED once the broker was back).
    public var fatalError: String? {
        var buffer = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(handle, &buffer, buffer.count)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { return String(errorBuffer: buffer) }
        return poller.refusedIdentity.withLock { $0 }
    }

    /// Records waiting for the broker (queued or in flight).
    public var queueDepth: Int { Int(rd_kafka_outq_len(handle)) }

    /// Publishes `records` to `topic`, each partitioned by its key, and returns once every
    /// one is delivered or failed, with one outcome per record in order.
    public func publish(topic: String, _ records: [(key: [UInt8], value: [UInt8])]) async -> [PublishOutcome] {
        guard !records.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            let pending = PendingPublish(count: records.count, continuation: continuation)
            let opaque = Unmanaged.passRetained(pending)  // released by whoever completes it
            let admitted = poller.gate.withLock { gate in
                if !gate.closed { gate.publishing += 1 }
                return !gate.closed
            }
            if admitted {
                topic.withCString { topicName in
                    for (i, record) in records.enumerated() {
                        if let error = enqueue(topicName, record.key, record.value, slot: pending.slot(i)) {
                            pending.complete(i, .failed(reason: error, possiblyWritten: false), releasing: opaque)
                        }
                    }
                }
                poller.gate.withLock { $0.publishing -= 1 }
            } else {
                for i in records.indices {
                    pending.complete(i, .failed(reason: "the ingest producer is closed", possiblyWritten: false), releasing: opaque)
                }
            }
            pending.finishEnqueueing(releasing: opaque)
        }
    }

    /// Hands one record to librdkafka; the failure's reason when it would not take it.
    private func enqueue(_ topic: UnsafePointer<CChar>, _ key: [UInt8], _ value: [UInt8], slot: UnsafeMutableRawPointer) -> String? {
        let error: OpaquePointer? = value.withUnsafeBytes { v in
            key.withUnsafeBytes { k in
                var vus = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 5)
                vus[0].vtype = RD_KAFKA_VTYPE_TOPIC
                vus[0].u.cstr = topic
                vus[1].vtype = RD_KAFKA_VTYPE_VALUE
                vus[1].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: v.baseAddress), size: v.count)
                vus[2].vtype = RD_KAFKA_VTYPE_KEY
                vus[2].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: k.baseAddress), size: k.count)
                vus[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                vus[3].u.i = RD_KAFKA_MSG_F_COPY
                vus[4].vtype = RD_KAFKA_VTYPE_OPAQUE
                vus[4].u.ptr = slot
                return rd_kafka_produceva(handle, vus, vus.count)
            }
        }
        guard let error else { return nil }
        defer { rd_kafka_error_destroy(error) }
        if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL {
            return "the broker has not acknowledged the \(queueDepth) records before it (producer queue full)"
        }
        return String(cString: rd_kafka_error_string(error))
    }
}

/// The delivery-report thread's stop flag and its "stopped" signal; the gate that lets
/// `close()` wait for enqueueing publishes; where the delivery callback notes a broker that
/// refused the producer's identity.
private final class Poller: Sendable {
    struct Gate {
        var closed = false
        /// Publishes handing records to librdkafka now.
        var publishing = 0
    }

    let gate = Mutex(Gate())
    let stopping = Atomic<Bool>(false)
    let done = DispatchSemaphore(value: 0)
    let refusedIdentity = Mutex<String?>(nil)

    static let identityErrors: Set<rd_kafka_resp_err_t> = [
        RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING,
    ]
}

/// One `publish` call waiting for its records' delivery reports. `remaining` counts the
/// records not yet completed plus one for the enqueueing loop, so the task resumes only
/// after the loop is done even when every report arrives before it ends.
final class PendingPublish: Sendable {
    private struct State {
        var outcomes: [PublishOutcome?]
        var remaining: Int
    }

    /// Per record: where its delivery report finds this object and its index.
    struct Slot {
        let owner: Unmanaged<PendingPublish>
        let index: Int
    }

    private let state: Mutex<State>
    private let continuation: CheckedContinuation<[PublishOutcome], Never>
    nonisolated(unsafe) private let slots: UnsafeMutableBufferPointer<Slot>

    init(count: Int, continuation: CheckedContinuation<[PublishOutcome], Never>) {
        state = Mutex(State(outcomes: Array(repeating: nil, count: count), remaining: count + 1))
        self.continuation = continuation
        slots = .allocate(capacity: count)
        for i in 0..<count { (slots.baseAddress! + i).initialize(to: Slot(owner: .passUnretained(self), index: i)) }
    }

    deinit { slots.deallocate() }

    func slot(_ index: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(slots.baseAddress! + index) }

    func complete(_ index: Int, _ outcome: PublishOutcome, releasing retained: Unmanaged<PendingPublish>) {
        let done: [PublishOutcome]? = state.withLock { s in
            s.outcomes[index] = outcome
            s.remaining -= 1
            return s.remaining == 0 ? s.outcomes.map { $0! } : nil
        }
        if let done { finish(done, retained) }
    }

    func finishEnqueueing(releasing retained: Unmanaged<PendingPublish>) {
        let done: [PublishOutcome]? = state.withLock { s in
            s.remaining -= 1
            return s.remaining == 0 ? s.outcomes.map { $0! } : nil
        }
        if let done { finish(done, retained) }
    }

    private func finish(_ outcomes: [PublishOutcome], _ retained: Unmanaged<PendingPublish>) {
        continuation.resume(returning: outcomes)
        retained.release()
    }

    static func slot(at pointer: UnsafeMutableRawPointer) -> Slot { pointer.assumingMemoryBound(to: Slot.self).pointee }
}

private let publishDeliveryCallback: @convention(c) (
    OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?
) -> Void = { _, message, opaque in
    guard let message, let pointer = message.pointee._private else { return }
    if let opaque, Poller.identityErrors.contains(message.pointee.err) {
        let reason = String(cString: rd_kafka_err2str(message.pointee.err))
        Unmanaged<Poller>.fromOpaque(opaque).takeUnretainedValue().refusedIdentity.withLock { $0 = $0 ?? reason }
    }
    let slot = PendingPublish.slot(at: pointer)
    let pending = slot.owner.takeUnretainedValue()
    let outcome: PublishOutcome
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        outcome = .delivered(partition: message.pointee.partition, offset: message.pointee.offset)
    } else {
        let status = rd_kafka_message_status(message)
        outcome = .failed(reason: String(cString: rd_kafka_err2str(message.pointee.err)),
                          possiblyWritten: status != RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
    }
    pending.complete(slot.index, outcome, releasing: slot.owner)
}
