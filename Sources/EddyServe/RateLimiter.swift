import Foundation
import Synchronization

/// A token bucket per client: `eventsPerSecond` tokens accrue up to `burst`, and a request
/// of n events takes n tokens or is refused whole (a batch is never half accepted for a
/// rate). Clients idle long enough to have a full bucket are forgotten, so the table is
/// bounded by the clients active within `burst / rate` seconds.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private let rate: Double
    private let burst: Double
    private struct Table {
        var buckets: [String: Bucket] = [:]
        var lastSweep = -Double.infinity
    }

    private let table = Mutex(Table())
    /// Forgetting full buckets runs when the table grows past this, at most once a second
    /// (it reads every bucket).
    private static let sweepAbove = 10_000

    init(_ limit: ServeConfig.RateLimit) {
        rate = limit.eventsPerSecond
        burst = limit.burst
    }

    /// Takes `events` tokens from `client`'s bucket at time `now` (seconds, any monotonic
    /// clock); on refusal, how many seconds until the request would fit.
    func take(_ events: Int, client: String, now: Double) -> Double? {
        let need = Double(events)
        return table.withLock { table in
            var bucket = table.buckets[client] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            defer {
                table.buckets[client] = bucket
                if table.buckets.count > Self.sweepAbove, now - table.lastSweep >= 1 {
                    table.buckets = table.buckets.filter { $0.value.tokens + (now - $0.value.updated) * rate < burst }
                    table.lastSweep = now
                }
            }
            guard need <= bucket.tokens else { return need > burst ? .infinity : (need - bucket.tokens) / rate }
            bucket.tokens -= need
            return nil
        }
    }
}
