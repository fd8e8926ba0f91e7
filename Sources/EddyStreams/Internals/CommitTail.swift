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
/// stream thread calls `finish()` before it submits the next one, before it evicts clean
/// cache entries (RocksDB must hold them first), and before it touches Redis or RocksDB
/// itself (rebalance, stop).
///
/// `@unchecked Sendable`: the stream thread and the tail thread hand the Redis connection,
/// the batch and the view back and forth through `submit`/`finish`, which wait on a
/// semaphore; no two threads use them at the same time.
final class CommitTail: @unchecked Sendable {
    private let redis: RedisConnection
    private let database: StateDatabase
    private let metrics: StreamsMetrics
    private let faults: FaultInjection
    private let logger: Logger
    private let queue: DispatchQueue
    private let done = DispatchSemaphore(value: 0)
    /// The submitted tail, until it succeeded.
    private var inFlight: (view: RedisViewWriter, batch: StateWriteBatch)?
    private var running = false
    /// The error of the in-flight tail's last run.
    private var lastError: Error?
    /// The fencing script's id on `redis`.
    private var scriptSHA: String?
    /// Two batches alternate: the stream thread fills one while the other is written.
    private var batches = (StateWriteBatch(), StateWriteBatch())

    init(redis: RedisConnection, database: StateDatabase, metrics: StreamsMetrics, faults: FaultInjection, logger: Logger, name: String) {
        self.redis = redis
        self.database = database
        self.metrics = metrics
        self.faults = faults
        self.logger = logger
        queue = DispatchQueue(label: name)
    }

    /// The batch to fill for the next commit (cleared). Call after `finish()`.
    func nextBatch() -> StateWriteBatch {
        precondition(isIdle, "a commit tail is still in flight")
        swap(&batches.0, &batches.1)
        batches.0.clear()
        return batches.0
    }

    /// Starts writing `view` to Redis, then `batch` (from `nextBatch()`) to RocksDB.
    func submit(view: RedisViewWriter, batch: StateWriteBatch) {
        precondition(isIdle, "a commit tail is still in flight")
        inFlight = (view, batch)
        running = true
        queue.async { [self] in
            do { try runInFlight() } catch { lastError = error }
            done.signal()
        }
    }

    /// Waits for the tail in flight. If it failed, runs it again here once; throws if that
    /// fails too (the tail stays pending: the next `finish()` tries again).
    func finish() throws {
        if running {
            done.wait()
            running = false
        }
        if let error = lastError {
            logger.warning("writing the last commit to Redis and RocksDB failed, retrying: \(error)")
            lastError = nil
            try runInFlight()
        }
    }

    /// Nothing in flight, nothing pending.
    var isIdle: Bool { !running && inFlight == nil }

    private func runInFlight() throws {
        guard let tail = inFlight else { return }
        let refused = try tail.view.send(over: redis, scriptSHA: &scriptSHA)
        if refused > 0 {
            // Expected after a restart or migration: Redis is already at a later position.
            logger.debug("Redis fence kept \(refused) block(s) of older writes out")
            metrics.fencedWrites.add(refused, ordering: .relaxed)
        }
        if tail.view.commandCount > 0 { faults.maybeCrash(at: .afterRedisWrite) }
        try database.write(tail.batch)
        metrics.redisWrites.add(tail.view.commandCount, ordering: .relaxed)
        inFlight = nil
    }
}
