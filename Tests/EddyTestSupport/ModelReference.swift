/// A plain model of the `model` operator's rules (`Topology.MatrixFactorization`), written
/// from the rules and the implicit-ALS objective, not from the operator: each coordinate's
/// minimizer is computed from the objective's terms over every vector of the other side,
/// where the operator keeps running Grams and rewrites the sum through them. So the two
/// agree to rounding, not bit for bit.
public struct ModelReference {
    public struct Event {
        public let user: String, item: String, type: String, ts: Int64

        public init(user: String, item: String, type: String, ts: Int64) {
            (self.user, self.item, self.type, self.ts) = (user, item, type, ts)
        }
    }

    public var factors = 8
    public var regularization = 0.1
    public var alpha = 10.0
    public var missingWeight = 1.0
    public var userHistory = 100
    public var itemHistory = 200
    public var weights: [String: Double] = [:]
    /// `state_ttl`: before each record, the users whose last record is more than this
    /// older leave; an item's history loses the users that left at its next update.
    public var userTTLMs: Int64?

    public private(set) var users: [String: [Double]] = [:]
    public private(set) var items: [String: [Double]] = [:]
    private var userItems: [String: [(id: String, confidence: Double)]] = [:]
    private var itemUsers: [String: [(id: String, confidence: Double)]] = [:]
    /// Creation order, so every sum over a side runs in a fixed order.
    private var userOrder: [String] = [], itemOrder: [String] = []
    private var lastRecord: [String: Int64] = [:]
    /// The users that left, in the order they left.
    public private(set) var left: [String] = []

    public init(factors: Int, regularization: Double, alpha: Double, missingWeight: Double = 1, userHistory: Int, itemHistory: Int,
                weights: [String: Double]) {
        (self.factors, self.regularization, self.alpha, self.missingWeight) = (factors, regularization, alpha, missingWeight)
        (self.userHistory, self.itemHistory, self.weights) = (userHistory, itemHistory, weights)
    }

    /// Applies `events` in the rules' order: by time, user, item, weight (ids compared as
    /// UTF-8 bytes); events without a weight are skipped.
    public mutating func apply(_ events: [Event]) {
        let weighted = events.compactMap { e in weights[e.type].map { (e, $0) } }
        let ordered = weighted.sorted { a, b in
            if a.0.ts != b.0.ts { return a.0.ts < b.0.ts }
            if a.0.user != b.0.user { return Array(a.0.user.utf8).lexicographicallyPrecedes(Array(b.0.user.utf8)) }
            if a.0.item != b.0.item { return Array(a.0.item.utf8).lexicographicallyPrecedes(Array(b.0.item.utf8)) }
            return a.1 < b.1
        }
        for (e, w) in ordered {
            if let ttl = userTTLMs {
                for (user, last) in lastRecord where last < e.ts - ttl {
                    users[user] = nil
                    userItems[user] = nil
                    userOrder.removeAll { $0 == user }
                    lastRecord[user] = nil
                    left.append(user)
                }
            }
            apply(user: e.user, item: e.item, weight: w)
            lastRecord[e.user] = e.ts
        }
    }

    private mutating func apply(user: String, item: String, weight: Double) {
        let c = alpha * weight
        Self.touch(&userItems[user, default: []], item, c, userHistory)
        Self.touch(&itemUsers[item, default: []], user, c, itemHistory)
        if items[item] == nil { items[item] = Self.initialVector(item, side: "i", factors); itemOrder.append(item) }
        if users[user] == nil { users[user] = Self.initialVector(user, side: "u", factors); userOrder.append(user) }
        users[user] = update(users[user]!, against: itemOrder.map { ($0, items[$0]!) }, history: userItems[user]!)
        if userTTLMs != nil { itemUsers[item]!.removeAll { users[$0.id] == nil } }
        items[item] = update(items[item]!, against: userOrder.map { ($0, users[$0]!) }, history: itemUsers[item]!)
    }

    private static func touch(_ history: inout [(id: String, confidence: Double)], _ id: String, _ c: Double, _ limit: Int) {
        var confidence = c
        if let i = history.firstIndex(where: { $0.id == id }) { confidence += history.remove(at: i).confidence }
        history.insert((id, confidence), at: 0)
        history = Array(history.prefix(limit))
    }

    /// One coordinate-descent sweep from `x` on
    ///     Σ_H (1 + c)(1 − xᵀy)² + w0 Σ_{all but H} (xᵀy)² + λ|x|²,
    /// written as that sum over every vector (an item in H weighs 1 + c towards 1, any other
    /// w0 towards 0): each coordinate in turn set to where the derivative is 0, recomputing
    /// every term from scratch.
    private func update(_ start: [Double], against all: [(id: String, vector: [Double])], history: [(id: String, confidence: Double)]) -> [Double] {
        var x = start
        let confidence = Dictionary(uniqueKeysWithValues: history.map { ($0.id, $0.confidence) })
        for g in 0..<factors {
            // f(x_g) = Σ_v w_v (t_v − r_v − x_g y_g)² + λ x_g² + const, with r_v the dot
            // product without coordinate g: minimized at Σ w (t − r) y_g / (Σ w y_g² + λ).
            var numerator = 0.0, denominator = regularization
            for (id, y) in all {
                let (weight, target) = confidence[id].map { (1 + $0, 1.0) } ?? (missingWeight, 0.0)
                var rest = 0.0
                for f in 0..<factors where f != g { rest += x[f] * y[f] }
                numerator += weight * (target - rest) * y[g]
                denominator += weight * y[g] * y[g]
            }
            x[g] = numerator / denominator
        }
        return x
    }

    /// The documented starting vector: FNV-1a (64-bit) of the side's letter and the id's
    /// bytes seeds SplitMix64; each draw's top 53 bits, as a fraction, − 0.5, times 0.02.
    public static func initialVector(_ id: String, side: Character, _ factors: Int) -> [Double] {
        var h: UInt64 = 14_695_981_039_346_656_037
        for byte in Array(String(side).utf8) + Array(id.utf8) {
            h = (h ^ UInt64(byte)) &* 1_099_511_628_211
        }
        var state = h
        var out: [Double] = []
        for _ in 0..<factors {
            state = state &+ 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z = z ^ (z >> 31)
            out.append((Double(z >> 11) / 9_007_199_254_740_992 - 0.5) * 0.02)
        }
        return out
    }
}
