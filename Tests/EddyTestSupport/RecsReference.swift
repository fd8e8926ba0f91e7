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

extension RecsReference {
    /// Co-view under a decay's `top_k` (`Topology.TopK`), from its rules: pairs grouped by
    /// the epoch of their time (`everyMs`); epochs up to `closedThrough` close in order,
    /// each adding its pairs to the kept values and keeping, per item, the `k` of largest
    /// rank (ties: the neighbour's name, bytewise); the open epochs' pairs are added on
    /// top. Contributions are summed in a canonical order so equal sets tie exactly.
    public static func topKCoView(_ pairs: [(item: String, other: String, type: String, ts: Int64)], weights: [String: Double],
                                  halfLifeMs: Double, k: Int, everyMs: Int64, closedThrough: Int64?) -> [String: [String: Double]] {
        func epoch(_ ts: Int64) -> Int64 { Int64((Double(ts) / Double(everyMs)).rounded(.down)) }
        func canonicalRank(_ c: [Contribution]) -> Double {
            rank(c.sorted { ($0.ts, $0.weight) < ($1.ts, $1.weight) }, halfLifeMs: halfLifeMs)
        }
        var byEpoch: [Int64: [String: [String: [Contribution]]]] = [:]
        for p in pairs {
            guard let w = weights[p.type] else { continue }
            byEpoch[epoch(p.ts), default: [:]][p.item, default: [:]][p.other, default: []].append((w, p.ts))
        }
        var kept: [String: [String: [Contribution]]] = [:]
        for e in byEpoch.keys.sorted() {
            guard let closedThrough, e <= closedThrough else { continue }
            for (item, others) in byEpoch[e]! {
                for (other, c) in others { kept[item, default: [:]][other, default: []] += c }
                let ranked = kept[item]!.map { (other: $0.key, rank: canonicalRank($0.value)) }
                    .sorted { $0.rank != $1.rank ? $0.rank > $1.rank : Array($0.other.utf8).lexicographicallyPrecedes(Array($1.other.utf8)) }
                for loser in ranked.dropFirst(k) { kept[item]![loser.other] = nil }
            }
        }
        var total = kept
        for (e, items) in byEpoch where closedThrough.map({ e > $0 }) ?? true {
            for (item, others) in items {
                for (other, c) in others { total[item, default: [:]][other, default: []] += c }
            }
        }
        return total.mapValues { $0.mapValues(canonicalRank) }
    }
}

extension RecsReference {
    /// The last epoch a `top_k` has closed once all of `events` are in, keyed by user on
    /// `partitions` partitions (Kafka's partitioner): the least over the partitions of
    /// their latest event time must have passed the epoch's end + grace. nil: none closed
    /// (or a partition has no events, which holds stream time back).
    public static func closedEpoch(_ events: [Event], partitions: Int, everyMs: Int64, graceMs: Int64) -> Int64? {
        guard let watermark = watermark(events, partitions: partitions) else { return nil }
        // The largest e with (e + 1)·every + grace < watermark (times here are positive).
        return (watermark - graceMs - 1) / everyMs - 1
    }

    /// The stream time after a re-key once every event is in: the least over the source
    /// partitions (users on them by Kafka's partitioner) of their latest event time; nil if
    /// a partition has none.
    public static func watermark(_ events: [Event], partitions: Int) -> Int64? {
        var latest = [Int64](repeating: .min, count: partitions)
        for e in events {
            let p = kafkaPartition(ofKey: e.user_id, partitions: partitions)
            latest[p] = max(latest[p], e.ts)
        }
        let watermark = latest.min()!
        return watermark == .min ? nil : watermark
    }
}
