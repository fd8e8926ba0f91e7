import EddyRecs
import EddyStreams
import Foundation

/// `eddy eval`: a prequential evaluation over an event log, with the real operators in the
/// topology test driver. Events are taken in event-time order; the first `warmUp` share
/// only updates the state. For each later interaction whose item the user has not
/// interacted with before (a repeat cannot be a hit: seen items are never recommended), each
/// method recommends the user's top k from the state as it is just before the event; then
/// the event is applied and committed, so the next one sees it. Users who had events in the
/// warm-up are "warm", the others "cold".
struct PrequentialEvaluation {
    struct Method {
        let name: String
        let scoring: Scoring
        let keys: RecsKeys
    }

    /// The methods compared: single signals, then the blend.
    static func methods(blend: Scoring) -> [Method] {
        [Method(name: "popularity (count)", scoring: .popularityOnly, keys: RecsKeys(popularityName: "item:count")),
         Method(name: "popularity (decayed)", scoring: .popularityOnly, keys: RecsKeys()),
         Method(name: "trending", scoring: Scoring(coView: 0, popularity: 0, trending: 1, category: 0, model: 0), keys: RecsKeys()),
         Method(name: "popular in the user's categories", scoring: .categoryOnly, keys: RecsKeys()),
         Method(name: "co-view (raw)", scoring: .coViewOnly(cosine: false), keys: RecsKeys()),
         Method(name: "co-view (cosine)", scoring: .coViewOnly(cosine: true), keys: RecsKeys()),
         Method(name: "online model (incremental ALS)", scoring: .modelOnly, keys: RecsKeys()),
         Method(name: "blend", scoring: blend, keys: RecsKeys())]
    }

    struct Event {
        let json: String
        let user: String, item: String, type: String, ts: Int64
    }

    struct Result {
        var warm: [RankingQuality]
        var cold: [RankingQuality]
        var warmUpEvents = 0
        var heldOutEvents = 0
    }

    let driver: TopologyTestDriver
    let interactions: Set<String>
    let k: Int
    let methods: [Method]

    func run(_ events: [Event], warmUp: Double) throws -> Result {
        let split = Int(Double(events.count) * warmUp)
        var result = Result(warm: methods.map { _ in RankingQuality() }, cold: methods.map { _ in RankingQuality() })
        var seen: [String: Set<String>] = [:]
        var warmUsers = Set<String>()
        for (i, e) in events[..<split].enumerated() {
            try driver.pipe(e.json)
            seen[e.user, default: []].insert(e.item)
            warmUsers.insert(e.user)
            if i % 5_000 == 4_999 { try driver.commit() }
        }
        try driver.commit()
        result.warmUpEvents = split
        let state = DriverRecsState(driver)
        for e in events[split...] {
            if interactions.contains(e.type), seen[e.user]?.contains(e.item) != true {
                state.refresh()
                for (m, method) in methods.enumerated() {
                    let recommended = try Recommender(state: state, scoring: method.scoring, keys: method.keys).recommend(user: e.user, k: k).map(\.item)
                    if warmUsers.contains(e.user) {
                        result.warm[m].add(recommended: recommended, actual: e.item)
                    } else {
                        result.cold[m].add(recommended: recommended, actual: e.item)
                    }
                }
            }
            try driver.pipe(e.json)
            try driver.commit()
            seen[e.user, default: []].insert(e.item)
            result.heldOutEvents += 1
        }
        return result
    }
}

/// `RecsState` over the test driver's model of Redis, sorted zsets cached until `refresh`.
final class DriverRecsState: RecsState {
    private let driver: TopologyTestDriver
    private var values: [String: TestRedisValue] = [:]
    private var sorted: [String: [ScoredMember]] = [:]
    private var parsed: [String: (text: String, vector: [Float]?)] = [:]
    private var factors: [String: ItemFactors] = [:]

    init(_ driver: TopologyTestDriver) { self.driver = driver }

    /// Reads the driver's state again (after a commit).
    func refresh() {
        values = driver.redis
        sorted.removeAll(keepingCapacity: true)
        factors.removeAll()
    }

    func list(_ key: String) throws -> [String] {
        if case .list(let l)? = values[key] { return l }
        return []
    }

    func top(_ key: String, limit: Int) throws -> [ScoredMember] {
        if sorted[key] == nil {
            guard case .zset(let z)? = values[key] else { return [] }
            // As ZREVRANGE: highest score first, ties by member, descending.
            sorted[key] = z.map { ScoredMember($0.key, $0.value) }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.member > $1.member }
        }
        return Array(sorted[key]!.prefix(limit))
    }

    func scores(_ key: String, members: [String]) throws -> [Double?] {
        guard case .zset(let z)? = values[key] else { return members.map { _ in nil } }
        return members.map { z[$0] }
    }

    func string(_ key: String) throws -> String? {
        if case .string(let s)? = values[key] { return s }
        return nil
    }

    /// Parsed once per distinct value: a commit changes a few items' vectors, and comparing
    /// an unchanged string (the same storage) costs next to nothing.
    func itemFactors(prefix: String) throws -> ItemFactors {
        if let cached = factors[prefix] { return cached }
        var rows: [(String, [Float])] = []
        for (key, value) in values where key.hasPrefix(prefix) {
            guard case .string(let text) = value else { continue }
            if parsed[key]?.text != text { parsed[key] = (text, ItemFactors.parse(text)) }
            if let v = parsed[key]!.vector { rows.append((String(key.dropFirst(prefix.count)), v)) }
        }
        var out = ItemFactors()
        for (item, v) in rows.sorted(by: { $0.0 < $1.0 }) { out.append(item, v) }
        factors[prefix] = out
        return out
    }

    func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] {
        keys.map { key in
            guard case .hash(let h)? = values[key] else { return names.map { _ in nil } }
            return names.map { h[$0] }
        }
    }
}
