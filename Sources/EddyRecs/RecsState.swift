import Foundation

/// What scoring reads of the state the topologies materialize (DESIGN.md §5, as
/// `Topologies/recs.yaml` writes it). One implementation reads Redis (`RedisRecsState`);
/// `eddy eval` reads the topology test driver's Redis model; tests use a dictionary.
public protocol RecsState {
    /// A list's values, first to last (`LRANGE key 0 -1`); empty if there is none.
    func list(_ key: String) throws -> [String]
    /// A zset's `limit` highest members, highest first (`ZREVRANGE key 0 limit-1 WITHSCORES`).
    func top(_ key: String, limit: Int) throws -> [ScoredMember]
    /// `top` of several zsets at once (one round trip to Redis).
    func tops(_ keys: [String], limit: Int) throws -> [[ScoredMember]]
    /// The scores of `members` in a zset, nil for those it lacks.
    func scores(_ key: String, members: [String]) throws -> [Double?]
    /// Hash fields `names` of each key (`HMGET`), nil where absent (every field of a key that
    /// does not exist).
    func fields(_ keys: [String], _ names: [String]) throws -> [[String?]]
    /// A string's value (`GET`), nil if there is none.
    func string(_ key: String) throws -> String?
    /// Every item's model factors: the strings under `prefix` (`item:emb:`), each a JSON
    /// array of numbers (`Topologies/recs.yaml`'s model node writes them).
    func itemFactors(prefix: String) throws -> ItemFactors
}

extension RecsState {
    public func tops(_ keys: [String], limit: Int) throws -> [[ScoredMember]] { try keys.map { try top($0, limit: limit) } }
}

public struct ScoredMember: Equatable, Sendable {
    public let member: String
    public let score: Double

    public init(_ member: String, _ score: Double) {
        self.member = member
        self.score = score
    }
}

/// The item vectors of a model, one row per item, to score a user's vector against all.
/// Rows may differ in length (a model redeployed with other `factors` leaves old vectors
/// behind until they are rewritten): a user's vector scores only the rows of its length.
public struct ItemFactors: Sendable {
    public private(set) var items: [String] = []
    /// Each item's row.
    private var rows: [String: Int] = [:]
    /// Item n's vector is `values[starts[n] ..< starts[n + 1]]`.
    private var values: [Float] = []
    private var starts: [Int] = [0]

    public init() {}

    /// Adds an item's vector; an item already added keeps its first vector (each item is
    /// one row, so a seen item is never scored through a second one).
    public mutating func append(_ item: String, _ vector: [Float]) {
        guard rows[item] == nil else { return }
        rows[item] = items.count
        items.append(item)
        values.append(contentsOf: vector)
        starts.append(values.count)
    }

    /// The row of `item` in `items` and `scores`.
    public func row(of item: String) -> Int? { rows[item] }

    /// Each item's dot product with `user`; nil for a vector of another length. Summed in
    /// eight lanes, not one after another: a serial sum waits on each addition, and scoring
    /// the whole catalog per request was 7.5% of serve's CPU (perf, 5,000 items × 32).
    public func scores(_ user: [Float]) -> [Float?] {
        values.withUnsafeBufferPointer { v in
            user.withUnsafeBufferPointer { u in
                let lanes = u.count / 8 * 8
                return items.indices.map { n -> Float? in
                    let start = starts[n]
                    guard starts[n + 1] - start == u.count else { return nil }
                    var sums = SIMD8<Float>()
                    var f = 0
                    while f < lanes {
                        sums += SIMD8(v[(start + f)..<(start + f + 8)]) * SIMD8(u[f..<(f + 8)])
                        f += 8
                    }
                    var s = sums.sum()
                    while f < u.count {
                        s += v[start + f] * u[f]
                        f += 1
                    }
                    return s
                }
            }
        }
    }

    /// A vector as the model writes it: a JSON array of numbers (nil if it is not one).
    public static func parse(_ text: String) -> [Float]? {
        var body = Substring(text)
        guard body.first == "[", body.last == "]" else { return nil }
        body = body.dropFirst().dropLast()
        if body.isEmpty { return [] }
        var out: [Float] = []
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            // Spaces and tabs trimmed by hand: Foundation's trimmingCharacters took 6% of a
            // request's CPU in `eddy serve` (perf), one user vector parsed per request.
            var number = part
            while number.first == " " || number.first == "\t" { number = number.dropFirst() }
            while number.last == " " || number.last == "\t" { number = number.dropLast() }
            guard let x = Float(number), x.isFinite else { return nil }
            out.append(x)
        }
        return out
    }
}

/// The key names scoring reads, as `Topologies/recs.yaml` writes them.
public struct RecsKeys: Sendable {
    public var prefix = ""
    /// The popularity zset's name (`eddy eval` points it at a plain count for a baseline).
    public var popularityName = "item:popularity"

    public init(prefix: String = "", popularityName: String = "item:popularity") {
        self.prefix = prefix
        self.popularityName = popularityName
    }

    public func recent(_ user: String) -> String { "\(prefix)user:recent:\(user)" }
    public func categories(_ user: String) -> String { "\(prefix)user:categories:\(user)" }
    public func coView(_ item: String) -> String { "\(prefix)co_view:\(item)" }
    public var coViewTotals: String { "\(prefix)co_view:totals" }
    public var popularity: String { "\(prefix)\(popularityName)" }
    public func popularity(in category: String) -> String { "\(prefix)item:popularity:\(category)" }
    public var trending: String { "\(prefix)item:trending" }
    /// An item's catalog row (`Topologies/catalog.yaml`): category, price, in_stock, margin.
    /// Not `item:{id}`: an item named `popularity` or `trending` would be a zset's key.
    public func item(_ item: String) -> String { "\(prefix)catalog:\(item)" }
    /// A session's features (`Topologies/recs.yaml`'s session node; the id is `user:start`).
    public func session(_ session: String) -> String { "\(prefix)session:\(session):features" }
    /// A model's factors (`Topologies/recs.yaml`'s model node): a user's, and every item's
    /// under the prefix.
    public func userFactors(_ user: String) -> String { "\(prefix)user:emb:\(user)" }
    public var itemFactorsPrefix: String { "\(prefix)item:emb:" }
    /// The user's count of cart events: a version that changes whenever their cart does.
    public func cartVersion(_ user: String) -> String { "\(prefix)user:cart:\(user)" }

    /// Whether `key` is item-level state (co-view, popularity, trending, the catalog, the
    /// model's item factors) that every user's events change, rather than a user's or a
    /// session's own.
    public func isItemLevel(_ key: String) -> Bool {
        guard key.hasPrefix(prefix) else { return false }
        let name = key.utf8.dropFirst(prefix.utf8.count)
        return ["co_view:", "item:", "catalog:"].contains { name.starts(with: $0.utf8) }
    }
}
