import Foundation

/// Brute-force models of the recommendation operators, written from their documented
/// rules (`Topology.Pairs`, `decay`, `recent` with `distinct`), for the tests to compare
/// Eddy's state with.
public enum RecsReference {
    /// One event as the references read it.
    public struct Event: Decodable, Equatable {
        public let user_id: String, item_id: String, event_type: String, ts: Int64
        public let category: String?

        public init(user: String, item: String, type: String, ts: Int64, category: String? = nil) {
            (user_id, item_id, event_type, self.ts, self.category) = (user, item, type, ts, category)
        }
    }

    /// A contribution to a decayed sum: a weight at an event time.
    public typealias Contribution = (weight: Double, ts: Int64)

    /// The pairs `pairs` forwards, in input order: (item, other, type, ts). Per user, the
    /// last `last` distinct items (most recent arrival first, each with its largest time);
    /// an event pairs with each kept item j ≠ its item with |t − tj| ≤ `withinMs`, both
    /// ways. (Groups forgotten after `withinMs` are not modelled: with events in time
    /// order per user they would pair with nothing anyway.)
    public static func pairs(_ events: [Event], last: Int, withinMs: Int64?) -> [(item: String, other: String, type: String, ts: Int64)] {
        var kept: [String: [(item: String, time: Int64)]] = [:]
        var out: [(item: String, other: String, type: String, ts: Int64)] = []
        for e in events {
            var items = kept[e.user_id] ?? []
            for other in items where other.item != e.item_id {
                if let withinMs, abs(e.ts - other.time) > withinMs { continue }
                out.append((e.item_id, other.item, e.event_type, e.ts))
                out.append((other.item, e.item_id, e.event_type, e.ts))
            }
            var time = e.ts
            if let i = items.firstIndex(where: { $0.item == e.item_id }) { time = max(time, items.remove(at: i).time) }
            items.insert((e.item_id, time), at: 0)
            kept[e.user_id] = Array(items.prefix(last))
        }
        return out
    }

    /// `decay`'s rank of a group: log2 of Σ w·2^(−(last − t)/halfLife) + last/halfLife.
    public static func rank(_ contributions: [Contribution], halfLifeMs: Double) -> Double {
        let last = contributions.map(\.ts).max()!
        return log2(contributions.reduce(0.0) { $0 + $1.weight * exp2(-Double(last - $1.ts) / halfLifeMs) }) + Double(last) / halfLifeMs
    }

    /// Co-view zsets from pairs: per item, per other item, the decayed rank.
    public static func coView(_ pairs: [(item: String, other: String, type: String, ts: Int64)], weights: [String: Double],
                              halfLifeMs: Double) -> [String: [String: Double]] {
        var byPair: [String: [String: [Contribution]]] = [:]
        for p in pairs {
            guard let w = weights[p.type] else { continue }
            byPair[p.item, default: [:]][p.other, default: []].append((w, p.ts))
        }
        return byPair.mapValues { $0.mapValues { rank($0, halfLifeMs: halfLifeMs) } }
    }

    /// Per user, the last `size` distinct items newest first (each at its latest time, ties
    /// to the later arrival).
    public static func recentDistinct(_ events: [Event], size: Int) -> [String: [String]] {
        var latest: [String: [String: (ts: Int64, order: Int)]] = [:]
        for (i, e) in events.enumerated() {
            if let seen = latest[e.user_id]?[e.item_id], seen.ts > e.ts { continue }
            latest[e.user_id, default: [:]][e.item_id] = (e.ts, i)
        }
        return latest.mapValues { items in
            Array(items.sorted { ($0.value.ts, $0.value.order) > ($1.value.ts, $1.value.order) }.prefix(size).map(\.key))
        }
    }
}
