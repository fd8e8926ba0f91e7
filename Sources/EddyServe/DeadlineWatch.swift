import Foundation
import Synchronization

/// Tells callers that their budget ran out: one thread for every call, waking each `tick`
/// while any call is watched and sleeping otherwise. A dispatch timer per call
/// (`asyncAfter`) cost a timer registration and a worker thread's wake-up for every request,
/// also for the many answered in time (about 8% of serve's CPU, perf). A call is told at
/// most `tick` after its deadline.
final class DeadlineWatch: Sendable {
    private struct Watched {
        let deadline: ContinuousClock.Instant
        let late: @Sendable () -> Void
    }

    private struct State {
        var watched: [Int: Watched] = [:]
        var next = 0
        /// The thread waits for `wake` (nothing watched): the next call signals it, once.
        var sleeping = false
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    let tick: Duration

    /// The thread lives as long as the process (serve has one pool, with one watch).
    init(tick: Duration = .milliseconds(2)) {
        self.tick = tick
        let thread = Thread { [self] in run() }
        thread.name = "eddy-serve-deadlines"
        thread.start()
    }

    /// `late` runs once `deadline` has passed, unless `done` was called with the token first.
    func watch(until deadline: ContinuousClock.Instant, late: @escaping @Sendable () -> Void) -> Int {
        let (token, wakeUp) = state.withLock { s in
            s.next += 1
            s.watched[s.next] = Watched(deadline: deadline, late: late)
            defer { s.sleeping = false }
            return (s.next, s.sleeping)
        }
        if wakeUp { wake.signal() }
        return token
    }

    func done(_ token: Int) { _ = state.withLock { $0.watched.removeValue(forKey: token) } }

    private func run() {
        while true {
            let idle = state.withLock { s in
                s.sleeping = s.watched.isEmpty
                return s.sleeping
            }
            if idle {
                wake.wait()
                continue
            }
            Thread.sleep(forTimeInterval: Double(tick.components.attoseconds) / 1e18 + Double(tick.components.seconds))
            let now = ContinuousClock.now
            let late = state.withLock { s in
                let expired = s.watched.filter { $0.value.deadline <= now }
                for token in expired.keys { s.watched[token] = nil }
                return expired.values.map(\.late)
            }
            for call in late { call() }
        }
    }
}
