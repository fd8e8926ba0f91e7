/// A seeded, deterministic synthetic clickstream with a planted taste structure.
///
/// - Items have Zipf popularity (item 0 most popular) and one category each; a category is
///   an item cluster.
/// - Each user prefers two categories: `tasteStrength` of their item picks come from those
///   (Zipf within the category), the rest from global popularity. `preferredCategories(of:)`
///   tells the truth, so recommendation quality can be measured against it.
/// - Users have Zipf activity. A session is 1–30 events, 5–120 s apart, starting with a
///   view; sessions of one user are at least 30 minutes apart.
/// - Event types view/click/cart/purchase ≈ 70/20/7/3 %; carts and purchases are of items
///   viewed earlier in the session and carry a price.
/// - Timestamps (epoch ms) never decrease: the next event is always the earliest pending one.
public struct ClickstreamGenerator {
    public struct Options: Sendable {
        public var users = 10_000
        public var items = 20_000
        public var categories = 24
        public var seed: UInt64 = 42
        /// 2026-01-01T00:00:00Z.
        public var startMillis: Int64 = 1_767_225_600_000
        /// Sessions open at once: more interleaving of users in the stream.
        public var concurrentSessions = 200
        public var tasteStrength = 0.75
        public init() {}
    }

    public struct Event: Equatable, Sendable {
        public enum Kind: String, Sendable { case view, click, cart, purchase }
        public var user: Int
        public var session: Int
        public var item: Int
        public var category: Int
        public var kind: Kind
        public var timestamp: Int64
        /// In cents; only carts and purchases carry one.
        public var priceCents: Int?
    }

    private struct Session {
        var user: Int
        var id: Int
        var remaining: Int
        var nextTime: Int64
        var viewed: [Int]
    }

    public let options: Options
    private var rng: SplitMix64
    private let itemPopularity: ZipfSampler
    private let userActivity: ZipfSampler
    private let itemsByCategory: [[Int]]
    private let categorySamplers: [ZipfSampler]
    private var sessions: [Session] = []  // a binary min-heap on nextTime
    private var userFreeAt: [Int64]
    private var nextSessionID = 0
    /// Marks a user whose session is still open.
    private static let busy = Int64.max

    public init(_ options: Options) {
        precondition(options.users > 0 && options.items > 0 && options.categories > 0, "users, items and categories must be positive")
        self.options = options
        rng = SplitMix64(seed: options.seed)
        itemPopularity = ZipfSampler(count: options.items, exponent: 1.05)
        userActivity = ZipfSampler(count: options.users, exponent: 0.7)
        var byCategory = Array(repeating: [Int](), count: options.categories)
        for item in 0..<options.items { byCategory[Self.category(of: item, options)].append(item) }
        itemsByCategory = byCategory.map { $0.isEmpty ? [0] : $0 }
        categorySamplers = itemsByCategory.map { ZipfSampler(count: $0.count, exponent: 1.05) }
        userFreeAt = Array(repeating: options.startMillis, count: options.users)
        // At most half the users are in a session at once, so a free user is always found.
        for _ in 0..<max(1, min(options.concurrentSessions, options.users / 2)) { openSession(at: options.startMillis) }
    }

    static func category(of item: Int, _ options: Options) -> Int {
        Int(mix(options.seed ^ 0xCA7, item) % UInt64(options.categories))
    }

    public func category(of item: Int) -> Int { Self.category(of: item, options) }

    /// The two categories user `user` prefers (the planted truth).
    public func preferredCategories(of user: Int) -> [Int] {
        let h = mix(options.seed ^ 0x7A57E, user)
        let first = Int(h % UInt64(options.categories))
        let second = (first + 1 + Int((h >> 32) % UInt64(max(options.categories - 1, 1)))) % options.categories
        return options.categories == 1 ? [first] : [first, second]
    }

    static func priceCents(of item: Int, _ options: Options) -> Int { 199 + Int(mix(options.seed ^ 0x9121CE, item) % 30_000) }

    public func priceCents(of item: Int) -> Int { Self.priceCents(of: item, options) }

    public mutating func next() -> Event {
        var session = popEarliest()
        let ts = session.nextTime
        let kind: Event.Kind
        let item: Int
        let roll = rng.unit()
        if session.viewed.isEmpty || roll < 0.70 {
            kind = .view
            item = pickItem(for: session.user)
            session.viewed.append(item)
        } else if roll < 0.90 {
            kind = .click
            item = session.viewed[rng.below(session.viewed.count)]
        } else if roll < 0.97 {
            kind = .cart
            item = session.viewed[rng.below(session.viewed.count)]
        } else {
            kind = .purchase
            item = session.viewed[rng.below(session.viewed.count)]
        }
        let event = Event(user: session.user, session: session.id, item: item, category: category(of: item), kind: kind,
                          timestamp: ts, priceCents: kind == .cart || kind == .purchase ? priceCents(of: item) : nil)
        session.remaining -= 1
        if session.remaining > 0 {
            session.nextTime = ts + 5_000 + Int64(rng.below(115_000))
            push(session)
        } else {
            userFreeAt[session.user] = ts + 30 * 60_000 + Int64(rng.below(6 * 3600_000))
            openSession(at: ts)
        }
        return event
    }

    private mutating func pickItem(for user: Int) -> Int {
        if rng.unit() < options.tasteStrength {
            let preferred = preferredCategories(of: user)
            let c = preferred[rng.below(preferred.count)]
            return itemsByCategory[c][categorySamplers[c].sample(&rng)]
        }
        return itemPopularity.sample(&rng)
    }

    private mutating func openSession(at now: Int64) {
        var user = userActivity.sample(&rng)
        var tries = 0
        while userFreeAt[user] == Self.busy {
            tries += 1
            user = tries < 16 ? userActivity.sample(&rng) : rng.below(options.users)
        }
        let length = min(30, 1 + Int(-log(1 - rng.unit()) * 6))
        let start = max(now + Int64(rng.below(60_000)), userFreeAt[user])
        userFreeAt[user] = Self.busy
        nextSessionID += 1
        push(Session(user: user, id: nextSessionID, remaining: length, nextTime: start, viewed: []))
    }

    // MARK: heap

    private mutating func push(_ s: Session) {
        sessions.append(s)
        var i = sessions.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard sessions[i].nextTime < sessions[parent].nextTime else { break }
            sessions.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func popEarliest() -> Session {
        let top = sessions[0]
        let last = sessions.removeLast()
        if !sessions.isEmpty {
            sessions[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < sessions.count, sessions[l].nextTime < sessions[m].nextTime { m = l }
                if r < sessions.count, sessions[r].nextTime < sessions[m].nextTime { m = r }
                if m == i { break }
                sessions.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

extension ClickstreamGenerator.Event {
    /// Appends the event as one JSON object (no newline).
    public func appendJSON(to out: inout [UInt8]) {
        func string(_ s: StaticString) { out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) }
        func int(_ v: Int64) {
            if v < 0 { out.append(UInt8(ascii: "-")) }
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var n = v.magnitude
            var count = 0
            withUnsafeMutableBytes(of: &digits) { buf in
                repeat {
                    buf[count] = UInt8(ascii: "0") + UInt8(n % 10)
                    n /= 10
                    count += 1
                } while n > 0
                for i in stride(from: count - 1, through: 0, by: -1) { out.append(buf[i]) }
            }
        }
        string("{\"user_id\":\"u"); int(Int64(user))
        string("\",\"session_id\":\"s"); int(Int64(session))
        string("\",\"item_id\":\"i"); int(Int64(item))
        string("\",\"category\":\"c"); int(Int64(category))
        string("\",\"event_type\":\"")
        switch kind {
        case .view: string("view")
        case .click: string("click")
        case .cart: string("cart")
        case .purchase: string("purchase")
        }
        string("\",\"ts\":"); int(timestamp)
        if let cents = priceCents {
            string(",\"price\":"); int(Int64(cents / 100))
            out.append(UInt8(ascii: "."))
            out.append(UInt8(ascii: "0") + UInt8(cents % 100 / 10))
            out.append(UInt8(ascii: "0") + UInt8(cents % 10))
        }
        out.append(UInt8(ascii: "}"))
    }

    public var userKey: String { "u\(user)" }
}

import Foundation
