import EddyRecs
import Synchronization

/// Answers of `/v1/recommendations` kept for `ttl`, at most `capacity` of them (past that
/// the oldest insertion goes first). The key names everything an answer depends on, the
/// user's cart version included, so a cart event makes the next request a miss as soon as
/// the state shows it: no invalidation messages.
final class ResultCache: Sendable {
    private struct Entry {
        let items: [Recommendation]
        let expires: ContinuousClock.Instant
        let sequence: Int
    }

    private struct Storage {
        var entries: [String: Entry] = [:]
        /// Insertions in order (key and sequence; a key put again has a newer sequence).
        var order: [(key: String, sequence: Int)] = []
        var head = 0
        var sequence = 0
    }

    let ttl: Duration
    let capacity: Int
    private let storage = Mutex(Storage())

    init(ttl: Duration, capacity: Int) {
        precondition(capacity > 0)
        self.ttl = ttl
        self.capacity = capacity
    }

    func get(_ key: String, at now: ContinuousClock.Instant) -> [Recommendation]? {
        storage.withLock { s in
            guard let entry = s.entries[key] else { return nil }
            guard entry.expires > now else {
                s.entries[key] = nil
                return nil
            }
            return entry.items
        }
    }

    func put(_ key: String, _ items: [Recommendation], at now: ContinuousClock.Instant) {
        storage.withLock { s in
            s.sequence += 1
            s.entries[key] = Entry(items: items, expires: now + ttl, sequence: s.sequence)
            s.order.append((key, s.sequence))
            while s.entries.count > capacity, s.head < s.order.count {
                let oldest = s.order[s.head]
                s.head += 1
                if s.entries[oldest.key]?.sequence == oldest.sequence { s.entries[oldest.key] = nil }
            }
            // Insertions of keys put again (or evicted) are dropped once they are most of the
            // list, so it stays within about twice the entries however often keys are put.
            if s.order.count - s.head > 2 * s.entries.count + 1024 {
                s.order = s.order[s.head...].filter { s.entries[$0.key]?.sequence == $0.sequence }
                s.head = 0
            } else if s.head > 1024, s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    var count: Int { storage.withLock { $0.entries.count } }
    /// Insertions remembered (for the test that keeps them bounded).
    var remembered: Int { storage.withLock { $0.order.count - $0.head } }
}
