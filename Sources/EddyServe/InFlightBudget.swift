import Synchronization

/// Bytes of ingest requests being read, validated or published at once, at most `limit`:
/// librdkafka's queue is bounded, and this bounds the request bodies waiting in front of it
/// (a broker outage holds each for up to publish_timeout). A request that does not fit is
/// answered 503 at once.
final class InFlightBudget: Sendable {
    private let used = Mutex(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Reserves `bytes`; false when they do not fit beside what is in flight.
    func reserve(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard used + bytes <= limit else { return false }
            used += bytes
            return true
        }
    }

    func release(_ bytes: Int) { used.withLock { $0 -= bytes } }

    var inUse: Int { used.withLock { $0 } }
}
