import EddyRedis
import EddyState
import Foundation
import Logging

/// The part of a commit after the Kafka transaction: the Redis view, then the RocksDB
/// WriteBatch (state, input offsets, changelog checkpoints). It runs on a thread of its own
/// while the stream thread goes back to processing: on two cores, Redis executing the
/// fenced script and the broker serving fetches overlap with Eddy's processing instead of
/// the stream thread waiting for them.
///
/// Why it may lag behind the Kafka commit: the transaction is the commit point. A crash
/// while a tail is in flight leaves the local state behind the group's offset, so the next
/// start restores the changelog tail and writes the restored keys Redis lacks (docs/exactly-once.md
/// §3, §5). Order still matters, so tails run one at a time and in commit order: the
/// stream thread waits for the tail before it commits again, before it evicts clean cache
/// entries (RocksDB must hold them first), and before it touches Redis or RocksDB itself
/// (rebalance, stop).
///
/// Outages: a tail that fails (Redis down, out of memory, not answering) is retried on the
/// tail's thread with back-off until it is written; nothing is dropped. Meanwhile the
/// stream thread sees `inOutage`, takes no new work and keeps polling the consumer so its
/// group membership stays alive. The outage is logged when it starts, while it lasts and
/// when it ends, and counted in the metrics.
///
/// `@unchecked Sendable`: the stream thread and the tail thread hand the Redis connection,
/// the batch and the view back and forth: the stream thread touches them only while no run
/// is in flight (`state == .idle`), and the tail thread only during a run; `state` and the
/// outage bookkeeping are read and written under `condition`.
final class CommitTail: @unchecked Sendable {
    private enum State { case idle, running, cancelled }

    private let redis: RedisConnection
    private let database: StateDatabase
    private let metrics: StreamsMetrics
    private let faults: FaultInjection
    private let logger: Logger
    private let queue: DispatchQueue
    private let condition = NSCondition()
    private var state = State.idle
    /// The submitted tail, until it is written.
    private var inFlight: (view: RedisViewWriter, batch: StateWriteBatch)?
    /// When the running tail first failed (nil: no outage), and its latest error.
    private var outageStart: ContinuousClock.Instant?
    private var lastError: Error?
    /// Watermarks Redis did not have when a tail's blocks arrived (see `RedisViewWriter`).
    private var missingWatermarks: [[UInt8]: Int64] = [:]
    /// The fencing script's id on `redis`.
    private var scriptSHA: String?
    /// Two batches alternate: the stream thread fills one while the other is written.
    private var batches = (StateWriteBatch(), StateWriteBatch())

    /// Back-off between attempts of a failing tail, and how often a lasting outage is logged.
    static let firstRetryDelay = Duration.milliseconds(100)
    /// Short: a failed attempt costs one refused connect (or one time-out), and input
    /// resumes within a second of Redis coming back.
    static let maxRetryDelay = Duration.seconds(1)
    static let outageLogInterval = Duration.seconds(30)

    init(redis: RedisConnection, database: StateDatabase, metrics: StreamsMetrics, faults: FaultInjection, logger: Logger, name: String) {
        self.redis = redis
        self.database = database
        self.metrics = metrics
        self.faults = faults
        self.logger = logger
        queue = DispatchQueue(label: name)
    }

    /// The batch to fill for the next commit (cleared). Call when `isIdle`.
    func nextBatch() -> StateWriteBatch {
        precondition(isIdle, "a commit tail is still in flight")
        swap(&batches.0, &batches.1)
        batches.0.clear()
        return batches.0
    }

    /// Starts writing `view` to Redis, then `batch` (from `nextBatch()`) to RocksDB, retrying
    /// until both are written (or `abandon()`).
    func submit(view: RedisViewWriter, batch: StateWriteBatch) {
        condition.lock()
        precondition(state == .idle && inFlight == nil, "a commit tail is still in flight")
        inFlight = (view, batch)
        state = .running
        condition.unlock()
        queue.async { [self] in runUntilWritten() }
    }

    /// The watermarks found missing since the last call: their tasks' state must be
    /// written to Redis again.
    func takeMissingWatermarks() -> [[UInt8]: Int64] {
        condition.withLock {
            defer { missingWatermarks.removeAll() }
            return missingWatermarks
        }
    }

    /// Nothing in flight.
    var isIdle: Bool { condition.withLock { state == .idle } }

    /// A tail failed and is being retried: Redis (or the disk) cannot take the last commit.
    var inOutage: Bool { condition.withLock { outageStart != nil } }

    /// How long the current outage has lasted and its latest error (nil: none).
    var outage: (duration: Duration, error: String)? {
        condition.withLock { outageStart.map { (ContinuousClock.now - $0, lastError.map { "\($0)" } ?? "?") } }
    }

    /// Waits until the tail is written, or until its attempts fail: true when written.
    /// A failed tail goes on being retried in the background.
    func waitUnlessFailing() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while state == .running && outageStart == nil { condition.wait() }
        return state == .idle
    }

    /// Waits until the tail is written; throws if it is not within `timeout` (it stays
    /// pending and goes on being retried).
    func finish(within timeout: Duration = .seconds(10)) throws {
        let deadline = Date(timeIntervalSinceNow: timeout.timeInterval)
        condition.lock()
        defer { condition.unlock() }
        while state == .running {
            if !condition.wait(until: deadline) && state == .running {
                throw CommitTailPending(reason: lastError.map { "\($0)" } ?? "still writing after \(timeout)")
            }
        }
    }

    /// Gives the pending tail up: its Redis writes and RocksDB batch are never made. Only
    /// safe when every task it covered is closed, so each reopens through a restore of its
    /// changelog (the Kafka commit already holds the tail's changes).
    func abandon() {
        condition.lock()
        if state == .running {
            state = .cancelled
            condition.broadcast()
        }
        while state == .cancelled { condition.wait() }
        condition.unlock()
    }

    private func runUntilWritten() {
        var delay = Self.firstRetryDelay
        var lastLog = ContinuousClock.now
        while true {
            var failure: Error?
            do { try runInFlight() } catch { failure = error }
            condition.lock()
            if let failure {
                metrics.redisErrors.add(1, ordering: .relaxed)
                lastError = failure
                if let start = outageStart {
                    if ContinuousClock.now - lastLog >= Self.outageLogInterval {
                        lastLog = .now
                        logger.warning("Redis still cannot take the last commit after \((ContinuousClock.now - start).seconds) s: \(failure)")
                    }
                } else {
                    outageStart = .now
                    lastLog = .now
                    metrics.redisOutagesActive.add(1, ordering: .relaxed)
                    metrics.redisOutages.add(1, ordering: .relaxed)
                    logger.warning("Redis cannot take the last commit, pausing input until it does (retrying with back-off): \(failure)")
                }
                condition.broadcast()
                // Sleeps the back-off unless abandon() wakes it.
                if state != .cancelled { _ = condition.wait(until: Date(timeIntervalSinceNow: delay.timeInterval)) }
            }
            if failure == nil || state == .cancelled {
                settle(written: failure == nil)
                condition.unlock()
                return
            }
            condition.unlock()
            delay = min(delay * 2, Self.maxRetryDelay)
        }
    }

    /// Ends a run (under `condition`): closes the outage, if any, and frees the tail.
    private func settle(written: Bool) {
        if let start = outageStart {
            let elapsed = ContinuousClock.now - start
            metrics.redisOutageMicros.add(Int(elapsed / .microseconds(1)), ordering: .relaxed)
            metrics.redisOutagesActive.subtract(1, ordering: .relaxed)
            if written {
                logger.notice("Redis took the pending commit after \(elapsed.seconds) s of outage; resuming input")
            } else {
                logger.warning("gave up the pending commit after \(elapsed.seconds) s of Redis outage; its tasks restore it from their changelogs when they open again")
            }
        }
        outageStart = nil
        lastError = nil
        inFlight = nil
        state = .idle
        condition.broadcast()
    }

    private func runInFlight() throws {
        guard let tail = inFlight else { return }
        let outcome = try tail.view.send(over: redis, scriptSHA: &scriptSHA)
        if outcome.refused > 0 {
            // Expected after a restart or migration: Redis is already at a later position.
            logger.debug("Redis fence kept \(outcome.refused) block(s) of older writes out")
            metrics.fencedWrites.add(outcome.refused, ordering: .relaxed)
        }
        if !outcome.missingWatermarks.isEmpty { condition.withLock { missingWatermarks.merge(outcome.missingWatermarks) { $1 } } }
        if tail.view.commandCount > 0 { faults.maybeCrash(at: .afterRedisWrite) }
        try database.write(tail.batch)
        metrics.redisWrites.add(tail.view.commandCount, ordering: .relaxed)
    }
}

extension Duration {
    var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A commit tail that is not written yet (Redis cannot take it): its changes are in Kafka
/// and reach Redis and RocksDB when it is, or through a restore after a restart.
struct CommitTailPending: Error, CustomStringConvertible {
    let reason: String
    var description: String { "the last commit is not yet in Redis and RocksDB: \(reason)" }
}
