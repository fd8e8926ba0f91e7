import EddyRecs
import Synchronization

/// The active namespace and the last popular and trending items read from it, with their
/// catalog rows: what fallback answers are made of when Redis is slow or gone. `RecommendationService`
/// refreshes it every few seconds; it is read as a `RecsState`, so fallback answers go
/// through the same `Recommender.popular` and business rules as live ones.
final class PopularSnapshot: Sendable {
    struct Contents: Sendable {
        /// The namespace's keys it was read with.
        var keys = RecsKeys()
        var zsets: [String: [ScoredMember]] = [:]
        /// Catalog rows by item key, as `HMGET` gave them.
        var rows: [String: [String?]] = [:]
    }

    /// Items kept per list.
    static let size = 200
    private let contents: Mutex<Contents>

    init(keys: RecsKeys) { contents = Mutex(Contents(keys: keys)) }

    /// The namespace's keys the snapshot was read with (or is to be read with).
    var keys: RecsKeys { contents.withLock { $0.keys } }

    /// Reads the lists and their catalog rows through `state`.
    static func read(_ state: any RecsState, keys: RecsKeys) throws -> Contents {
        var out = Contents(keys: keys)
        for key in [keys.popularity, keys.trending] { out.zsets[key] = try state.top(key, limit: size) }
        let items = Array(Set(out.zsets.values.flatMap { $0.map(\.member) })).sorted()
        let itemKeys = items.map(keys.item)
        for (key, fields) in zip(itemKeys, try state.fields(itemKeys, CatalogRow.fieldNames)) { out.rows[key] = fields }
        return out
    }

    func replace(with new: Contents) { contents.withLock { $0 = new } }

    var state: State { State(contents: contents.withLock { $0 }) }

    var isEmpty: Bool { contents.withLock { $0.zsets.values.allSatisfy(\.isEmpty) } }

    /// The snapshot as of one moment.
    struct State: RecsState {
        let contents: Contents
        func list(_ key: String) throws -> [String] { [] }
        func top(_ key: String, limit: Int) throws -> [ScoredMember] { Array((contents.zsets[key] ?? []).prefix(limit)) }
        func scores(_ key: String, members: [String]) throws -> [Double?] {
            let zset = contents.zsets[key] ?? []
            return members.map { m in zset.first { $0.member == m }?.score }
        }
        func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] {
            keys.map { contents.rows[$0] ?? names.map { _ in nil } }
        }
        // The fallback answers popular items only: it keeps no model.
        func string(_ key: String) throws -> String? { nil }
        func itemFactors(prefix: String) throws -> ItemFactors { ItemFactors() }
    }
}
