import Foundation

// An independent, brute-force model of session windows (`Topology.SessionWindow`), for the
// session operator's tests to compare against. It shares no code with Eddy: only Foundation.
// It is written for clarity, not speed (every step scans everything).
//
// Semantics (exactly these):
// - Events are processed in arrival order (one task). Stream time = the largest event time
//   seen so far, including the current event.
// - An event (key k, time t) touches every open session of k with
//   start − gap ≤ t ≤ end + gap. The merged session spans the min/max of those sessions'
//   start/end and t. If merged.end < streamTime − grace, the event is LATE: its arrival
//   index is appended to `late` and it changes nothing. Otherwise the touched sessions are
//   replaced by the merged one, holding all their events plus this one (so an event that
//   arrives out of order, within grace, can merge two sessions).
// - After each event, every open session with end + gap + grace < streamTime closes, in
//   order of (end + gap + grace, key, start); closed sessions are appended to `closed`.
// - A session's features, computed by brute force over its events:
//   events: the number of events;
//   eventCounts: events per event type (events without a type are not counted there);
//   distinctItems: the number of distinct non-nil items;
//   categoryCounts: events per category (events without one are not counted there);
//   topCategory: the category with the highest count, ties to the lexicographically
//     smallest (UTF-8 byte order); "" when no event has a category;
//   lastItem: among the events that have an item, the item of the one with the largest
//     time, among equal times the one that arrived last; "" when none has an item;
//   cartValue / purchaseValue: the sum of the prices of the events whose type is in
//     cartTypes / purchaseTypes and that have a price (summed in arrival order; 0 if none).
//     A type in both lists adds to both.
//   id = "<key>:<start>", durationMs = end − start.
//
// Arrival indexes count `add` calls from 0, late events included. Keys and categories
// compare in UTF-8 byte order.

public struct RefEvent: Equatable {
    public let key: String
    public let time: Int64
    public let eventType: String?
    public let item: String?
    public let category: String?
    public let price: Double?

    public init(key: String, time: Int64, eventType: String? = nil, item: String? = nil, category: String? = nil, price: Double? = nil) {
        self.key = key
        self.time = time
        self.eventType = eventType
        self.item = item
        self.category = category
        self.price = price
    }
}

public struct RefSession: Equatable {
    public let key: String
    public let start: Int64
    public let end: Int64
    public let events: Int
    public let eventCounts: [String: Int]
    public let distinctItems: Int
    public let categoryCounts: [String: Int]
    public let topCategory: String
    public let lastItem: String
    public let cartValue: Double
    public let purchaseValue: Double

    public init(key: String, start: Int64, end: Int64, events: Int, eventCounts: [String: Int], distinctItems: Int,
                categoryCounts: [String: Int], topCategory: String, lastItem: String, cartValue: Double, purchaseValue: Double) {
        self.key = key
        self.start = start
        self.end = end
        self.events = events
        self.eventCounts = eventCounts
        self.distinctItems = distinctItems
        self.categoryCounts = categoryCounts
        self.topCategory = topCategory
        self.lastItem = lastItem
        self.cartValue = cartValue
        self.purchaseValue = purchaseValue
    }

    public var id: String { "\(key):\(start)" }
    public var durationMs: Int64 { end - start }
}

public struct SessionReference {
    public let gapMs: Int64
    public let graceMs: Int64
    public let cartTypes: [String]
    public let purchaseTypes: [String]

    /// Sessions in the order they closed, with their features at closing.
    public private(set) var closed: [RefSession] = []
    /// Arrival indexes (from 0) of the late events.
    public private(set) var late: [Int] = []
    /// The largest event time seen so far; nil before the first event.
    public private(set) var streamTime: Int64?

    /// An open session: its key, span, and its events with their arrival indexes.
    private struct Window {
        let key: String
        var start: Int64
        var end: Int64
        var events: [(arrival: Int, event: RefEvent)]
    }

    private var windows: [Window] = []
    private var arrivals = 0

    public init(gapMs: Int64, graceMs: Int64 = 0, cartTypes: [String] = ["cart"], purchaseTypes: [String] = ["purchase"]) {
        precondition(gapMs > 0 && graceMs >= 0)
        self.gapMs = gapMs
        self.graceMs = graceMs
        self.cartTypes = cartTypes
        self.purchaseTypes = purchaseTypes
    }

    /// Open sessions, sorted by (key, start), with their current features.
    public var open: [RefSession] {
        windows.sorted { a, b in a.key == b.key ? a.start < b.start : Self.precedes(a.key, b.key) }.map(features)
    }

    public mutating func add(_ e: RefEvent) {
        let arrival = arrivals
        arrivals += 1
        let now = max(streamTime ?? e.time, e.time)
        streamTime = now

        let touched = windows.indices.filter { i in
            windows[i].key == e.key && windows[i].start - gapMs <= e.time && e.time <= windows[i].end + gapMs
        }
        let start = touched.map { windows[$0].start }.reduce(e.time, min)
        let end = touched.map { windows[$0].end }.reduce(e.time, max)
        if end < now - graceMs {
            late.append(arrival)
        } else {
            var events = touched.flatMap { windows[$0].events } + [(arrival: arrival, event: e)]
            events.sort { $0.arrival < $1.arrival }
            windows = windows.indices.filter { !touched.contains($0) }.map { windows[$0] }
            windows.append(Window(key: e.key, start: start, end: end, events: events))
        }

        func closesAt(_ w: Window) -> Int64 { w.end + gapMs + graceMs }
        let closing = windows.filter { closesAt($0) < now }.sorted { a, b in
            if closesAt(a) != closesAt(b) { return closesAt(a) < closesAt(b) }
            if a.key != b.key { return Self.precedes(a.key, b.key) }
            return a.start < b.start
        }
        windows.removeAll { closesAt($0) < now }
        closed += closing.map(features)
    }

    private func features(_ w: Window) -> RefSession {
        let events = w.events.map(\.event)
        var eventCounts: [String: Int] = [:]
        var categoryCounts: [String: Int] = [:]
        var items = Set<String>()
        var cartValue = 0.0
        var purchaseValue = 0.0
        var last: (time: Int64, item: String)?
        for e in events {  // in arrival order
            if let type = e.eventType { eventCounts[type, default: 0] += 1 }
            if let category = e.category { categoryCounts[category, default: 0] += 1 }
            if let item = e.item {
                items.insert(item)
                if last == nil || e.time >= last!.time { last = (e.time, item) }
            }
            if let type = e.eventType, let price = e.price {
                if cartTypes.contains(type) { cartValue += price }
                if purchaseTypes.contains(type) { purchaseValue += price }
            }
        }
        let top = categoryCounts.sorted { a, b in a.value != b.value ? a.value > b.value : Self.precedes(a.key, b.key) }.first?.key
        return RefSession(key: w.key, start: w.start, end: w.end, events: events.count, eventCounts: eventCounts,
                          distinctItems: items.count, categoryCounts: categoryCounts, topCategory: top ?? "",
                          lastItem: last?.item ?? "", cartValue: cartValue, purchaseValue: purchaseValue)
    }

    private static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

extension RefSession {
    /// The session's hash as Eddy writes it: counts as JSON objects with keys in byte order,
    /// integral numbers without a fraction.
    public var redisFields: [String: String] {
        func counts(_ c: [String: Int]) -> String {
            "{" + c.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { "\"\($0)\":\(c[$0]!)" }.joined(separator: ",") + "}"
        }
        func number(_ d: Double) -> String { d.rounded() == d ? String(Int64(d)) : "\(d)" }
        return ["session_id": id, "start": "\(start)", "end": "\(end)", "duration_ms": "\(durationMs)", "events": "\(events)",
                "event_counts": counts(eventCounts), "distinct_items": "\(distinctItems)", "category_counts": counts(categoryCounts),
                "top_category": topCategory, "last_item": lastItem, "cart_value": number(cartValue), "purchase_value": number(purchaseValue)]
    }
}
