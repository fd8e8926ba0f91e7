import EddyRedis
import Foundation
import Synchronization

/// Redis for request handlers. hiredis calls block, so they run on `size` threads of the
/// pool's own, each with its connection — never on Swift's cooperative threads, the event
/// loops or libdispatch's workers (on Linux Swift's tasks run on libdispatch's pool: calls
/// blocked there by a Redis that stopped answering stalled every route, /healthz
/// included). At most `maxAdmitted` calls run or wait; past that, and for a call that
/// waited longer than `maxWait`, the answer is `Busy` at once. A call that fails drops its
/// connection (a new one is opened next time), so a Redis that came back is used again.
final class RedisPool: Sendable {
    struct Endpoint: Sendable {
        let host: String
        let port: Int
        let timeoutMs: Int
        let credentials: RedisCredentials?
    }

    struct Busy: Error, CustomStringConvertible {
        let description: String
        /// Redis could not be reached (a failure of Redis), rather than the pool being full
        /// or the caller having given up (a failure of load).
        var unreachable = false
    }

    private struct Job {
        let admitted: ContinuousClock.Instant
        /// Past this nobody waits for the answer (`run(within:)`): the call is skipped, so
        /// an overloaded pool does not work through answers already given up on.
        var deadline: ContinuousClock.Instant?
        /// Runs the call; whether the connection is still good afterwards.
        let run: @Sendable (RedisConnection?) -> Bool
        let refuse: @Sendable (Busy) -> Void
    }

    private struct Queue {
        var jobs: [Job] = []
        var admitted = 0
    }

    private let endpoint: Endpoint
    private let queue = Mutex(Queue())
    private let ready = DispatchSemaphore(value: 0)
    /// Answers `.late` to `run(within:)` calls past their budget.
    private let deadlines = DeadlineWatch()
    let maxAdmitted: Int
    let maxWait: Duration

    /// The threads live as long as the process (serve has one pool).
    init(_ endpoint: Endpoint, size: Int = 8, maxAdmitted: Int = 64, maxWait: Duration = .seconds(1)) {
        self.endpoint = endpoint
        self.maxAdmitted = maxAdmitted
        self.maxWait = maxWait
        for i in 0..<size {
            let thread = Thread { [self] in work() }
            thread.name = "eddy-serve-redis-\(i)"
            thread.start()
        }
    }

    /// Runs `body` with a connection on one of the pool's threads.
    func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            submit(body) { continuation.resume(with: $0) }
        }
    }

    /// What `run(within:)` got.
    enum Timed<T: Sendable>: Sendable {
        case value(T)
        case failed(any Error)
        /// Not done within the budget (the call goes on; its result is dropped).
        case late
    }

    /// `run`, answering `.late` once `budget` has passed; the call itself cannot be
    /// interrupted (hiredis blocks), so it finishes on its thread, bounded by the admission
    /// limit and Redis' time-out.
    func run<T: Sendable>(within budget: Duration, _ body: @escaping @Sendable (RedisConnection) throws -> T) async -> Timed<T> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Timed<T>, Never>) in
            let once = Mutex<CheckedContinuation<Timed<T>, Never>?>(continuation)
            let finish: @Sendable (Timed<T>) -> Void = { outcome in once.withLock { $0.take() }?.resume(returning: outcome) }
            let deadline = ContinuousClock.now + budget
            let token = deadlines.watch(until: deadline) { finish(.late) }
            submit(body, deadline: deadline) { [deadlines] result in
                deadlines.done(token)
                switch result {
                case .success(let value): finish(.value(value))
                case .failure(let error): finish(.failed(error))
                }
            }
        }
    }

    private func submit<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T, deadline: ContinuousClock.Instant? = nil,
                                     done: @escaping @Sendable (Result<T, any Error>) -> Void) {
        let where_ = "\(endpoint.host):\(endpoint.port)"
        let job = Job(admitted: .now, deadline: deadline, run: { connection in
            guard let connection else {
                done(.failure(Busy(description: "cannot connect to Redis at \(where_)", unreachable: true)))
                return false
            }
            do {
                done(.success(try body(connection)))
                return true
            } catch {
                done(.failure(error))
                return false
            }
        }, refuse: { done(.failure($0)) })
        let refused: Busy? = queue.withLock { q in
            guard q.admitted < maxAdmitted else {
                return Busy(description: "\(q.admitted) Redis calls are already running or waiting (Redis is slow or gone)")
            }
            q.admitted += 1
            q.jobs.append(job)
            return nil
        }
        if let refused { job.refuse(refused) } else { ready.signal() }
    }

    /// One pool thread: takes jobs in order, keeps its connection while calls succeed.
    private func work() {
        var connection: RedisConnection?
        while true {
            ready.wait()
            guard let job = queue.withLock({ q in q.jobs.isEmpty ? nil : q.jobs.removeFirst() }) else { continue }
            defer { queue.withLock { $0.admitted -= 1 } }
            if let deadline = job.deadline, ContinuousClock.now > deadline {
                job.refuse(Busy(description: "the caller stopped waiting"))
                continue
            }
            if ContinuousClock.now - job.admitted > maxWait {
                job.refuse(Busy(description: "waited over \(maxWait) for a Redis connection (Redis is slow or gone)"))
                continue
            }
            if connection == nil {
                // RedisConnection reconnects once on a broken connection (one Redis closed
                // when it restarted, as every idle pool thread's is).
                connection = try? RedisConnection(host: endpoint.host, port: endpoint.port, timeoutMs: endpoint.timeoutMs, credentials: endpoint.credentials)
            }
            if !job.run(connection) { connection = nil }
        }
    }
}
