/// A plain model of the `model` operator's rules (`Topology.MatrixFactorization`), written
/// from the rules and the implicit-ALS equations, not from the operator: the Grams are
/// summed afresh for every solve and the normal equations are solved by Gaussian
/// elimination, where the operator keeps running Grams and uses Cholesky. So the two agree
/// to rounding, not bit for bit.
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

    public private(set) var users: [String: [Double]] = [:]
    public private(set) var items: [String: [Double]] = [:]
    private var userItems: [String: [(id: String, confidence: Double)]] = [:]
    private var itemUsers: [String: [(id: String, confidence: Double)]] = [:]
    /// Creation order, so a Gram sums in a fixed order.
    private var userOrder: [String] = [], itemOrder: [String] = []

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
        for (e, w) in ordered { apply(user: e.user, item: e.item, weight: w) }
    }

    private mutating func apply(user: String, item: String, weight: Double) {
        let c = alpha * weight
        Self.touch(&userItems[user, default: []], item, c, userHistory)
        Self.touch(&itemUsers[item, default: []], user, c, itemHistory)
        if items[item] == nil { items[item] = Self.initialVector(item, side: "i", factors); itemOrder.append(item) }
        if users[user] == nil { users[user] = Self.initialVector(user, side: "u", factors); userOrder.append(user) }
        users[user] = solve(against: itemOrder.map { items[$0]! }, history: userItems[user]!.map { (items[$0.id]!, $0.confidence) })
        items[item] = solve(against: userOrder.map { users[$0]! }, history: itemUsers[item]!.map { (users[$0.id]!, $0.confidence) })
    }

    private static func touch(_ history: inout [(id: String, confidence: Double)], _ id: String, _ c: Double, _ limit: Int) {
        var confidence = c
        if let i = history.firstIndex(where: { $0.id == id }) { confidence += history.remove(at: i).confidence }
        history.insert((id, confidence), at: 0)
        history = Array(history.prefix(limit))
    }

    /// x = (w0·Σ_all y yᵀ + Σ_H (1 + c − w0) y yᵀ + λI)⁻¹ Σ_H (1 + c) y: every item a 0 of
    /// confidence w0, the history's a 1 of confidence 1 + c.
    private func solve(against all: [[Double]], history: [([Double], Double)]) -> [Double] {
        let k = factors
        var a = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        var b = [Double](repeating: 0, count: k)
        for y in all { for r in 0..<k { for s in 0..<k { a[r][s] += missingWeight * y[r] * y[s] } } }
        for (y, c) in history {
            for r in 0..<k {
                for s in 0..<k { a[r][s] += (1 + c - missingWeight) * y[r] * y[s] }
                b[r] += (1 + c) * y[r]
            }
        }
        for r in 0..<k { a[r][r] += regularization }
        // Gaussian elimination with partial pivoting.
        for col in 0..<k {
            let pivot = (col..<k).max { abs(a[$0][col]) < abs(a[$1][col]) }!
            a.swapAt(col, pivot)
            b.swapAt(col, pivot)
            for row in (col + 1)..<k {
                let f = a[row][col] / a[col][col]
                for s in col..<k { a[row][s] -= f * a[col][s] }
                b[row] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: k)
        for row in stride(from: k - 1, through: 0, by: -1) {
            var s = b[row]
            for j in (row + 1)..<k { s -= a[row][j] * x[j] }
            x[row] = s / a[row][row]
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
