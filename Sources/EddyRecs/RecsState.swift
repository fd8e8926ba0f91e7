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
    /// The user's count of cart events: a version that changes whenever their cart does.
    public func cartVersion(_ user: String) -> String { "\(prefix)user:cart:\(user)" }
}
