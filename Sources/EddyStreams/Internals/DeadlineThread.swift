import Dispatch

/// Runs blocking librdkafka calls one at a time on a thread of its own, for a caller that
/// waits at most a deadline Eddy enforces itself.
///
/// Why: librdkafka's transactional calls take a timeout but do not always honour it. After
/// the coordinator connection drops, `rd_kafka_send_offsets_to_transaction` can wait for
/// good even once the broker is back (librdkafka issues #5456, #5511; seen here 6 of 6
/// times with exactly-once on a 3–15 s broker outage). A call that misses its deadline is
/// left running on this thread with its producer: the caller abandons both and starts a
/// new producer, and whatever the stuck call returns later is dropped.
final class DeadlineThread: Sendable {
    private let queue: DispatchQueue

    init(name: String) { queue = DispatchQueue(label: name) }

    /// Runs `body` here and returns its result; throws `StepTimedOut` if it has not returned
    /// within `timeout` (it goes on running, and nothing waits for it any more).
    func run<T>(_ step: String, timeout: Duration, _ body: @escaping () throws -> T) throws -> T {
        let call = Call(body)
        queue.async { call.run() }
        guard call.done.wait(timeout: .now() + timeout.timeInterval) == .success else {
            throw StepTimedOut(step: step, timeout: timeout)
        }
        return try call.result!.get()
    }

    /// One call and its outcome. `@unchecked Sendable`: `body` runs once, on the deadline
    /// thread; `result` is written there before `done` is signalled and read by the caller
    /// only after `done` was signalled (the semaphore orders the two).
    private final class Call<T>: @unchecked Sendable {
        let body: () throws -> T
        var result: Result<T, Error>?
        let done = DispatchSemaphore(value: 0)

        init(_ body: @escaping () throws -> T) { self.body = body }

        func run() {
            result = Result { try body() }
            done.signal()
        }
    }
}

/// A blocking step that missed the deadline Eddy gives it.
struct StepTimedOut: Error, CustomStringConvertible {
    let step: String
    let timeout: Duration
    var description: String { "\(step) did not finish within \(timeout.seconds) s" }
}
