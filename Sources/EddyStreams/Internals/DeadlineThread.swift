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
///
/// A stop cuts every wait short (`cutShort`): a step that began before the stop keeps its
/// own deadline only while that ends before the stop's.
final class DeadlineThread: Sendable {
    private let queue: DispatchQueue
    private let cutShort: @Sendable () -> ContinuousClock.Instant?

    /// `cutShort`: when to give up whatever the step's own deadline (nil: not yet known);
    /// asked before each call and every 100 ms while one runs.
    init(name: String, cutShort: @escaping @Sendable () -> ContinuousClock.Instant? = { nil }) {
        queue = DispatchQueue(label: name)
        self.cutShort = cutShort
    }

    /// Runs `body` here and returns its result; throws `StepTimedOut` if it has not returned
    /// within `timeout` or by the cut (it goes on running, and nothing waits for it any
    /// more). Past the cut, `body` does not start at all.
    func run<T>(_ step: String, timeout: Duration, _ body: @escaping () throws -> T) throws -> T {
        let own = ContinuousClock.now + timeout
        if let cut = cutShort(), cut <= .now { throw StepTimedOut(step: step, timeout: timeout, cutByStop: true) }
        let call = Call(body)
        queue.async { call.run() }
        while true {
            let cut = cutShort()
            let end = min(own, cut ?? own)
            let now = ContinuousClock.now
            if now >= end {
                // A call that returned since the last wait is not given up.
                if call.done.wait(timeout: .now()) == .success { return try call.result!.get() }
                throw StepTimedOut(step: step, timeout: timeout, cutByStop: end < own)
            }
            let wake = min(end - now, .milliseconds(100))
            if call.done.wait(timeout: .now() + wake.timeInterval) == .success { return try call.result!.get() }
        }
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

/// A blocking step that missed the deadline Eddy gives it, or that a stop cut short.
struct StepTimedOut: Error, CustomStringConvertible {
    let step: String
    let timeout: Duration
    var cutByStop = false
    var description: String {
        cutByStop ? "\(step) given up: the stop's time for Kafka is over (runtime.stop_timeout_ms)"
            : "\(step) did not finish within \(timeout.seconds) s"
    }
}
