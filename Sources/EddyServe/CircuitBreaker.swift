/// Stops calling a Redis that keeps failing, and tries it again after a while: closed (calls
/// go through) until `threshold` calls in a row failed, then open (no calls: answers fall
/// back at once) for `openFor`, then half-open: one probe call goes through, and its outcome
/// closes the breaker or opens it again. Outcomes are reported when a call ends, also a call
/// that ended after its answer was already given up on; a probe whose outcome never comes
/// (skipped in the pool's queue after its caller gave up) is replaced after `probeTimeout`,
/// so the breaker cannot stay half-open for good.
/// A value type: `RecommendationService` keeps it under a lock.
struct CircuitBreaker {
    enum State: Equatable {
        case closed(failures: Int)
        case open(until: ContinuousClock.Instant)
        /// The probe is out; nothing else goes through until it ends or `probeTimeout` passes.
        case probing(since: ContinuousClock.Instant)
    }

    let threshold: Int
    let openFor: Duration
    /// Longer than any call can take (Redis' time-out is 5 s unless configured).
    let probeTimeout: Duration
    private(set) var state = State.closed(failures: 0)
    /// How many times it opened.
    private(set) var openings = 0

    init(threshold: Int = 5, openFor: Duration = .seconds(2), probeTimeout: Duration = .seconds(15)) {
        precondition(threshold > 0)
        self.threshold = threshold
        self.openFor = openFor
        self.probeTimeout = probeTimeout
    }

    /// Open or probing: calls are held back.
    var isOpen: Bool {
        if case .closed = state { return false }
        return true
    }

    /// Whether a call may go to Redis now (past the open time: this one is the probe).
    mutating func allows(at now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed: return true
        case .probing(let since):
            guard now >= since + probeTimeout else { return false }
            state = .probing(since: now)
            return true
        case .open(let until):
            guard now >= until else { return false }
            state = .probing(since: now)
            return true
        }
    }

    mutating func succeeded() {
        state = .closed(failures: 0)
    }

    mutating func failed(at now: ContinuousClock.Instant) {
        switch state {
        case .closed(let failures) where failures + 1 < threshold:
            state = .closed(failures: failures + 1)
        case .open:
            break  // a call let through before it opened
        default:
            state = .open(until: now + openFor)
            openings += 1
        }
    }
}
