import Foundation

/// A user's top-k from the materialized state (`RecsState`), the one implementation that
/// `eddy recommend`, `eddy eval` and the query endpoint call.
///
/// The signals, each in [0, 1] for a candidate item j, from ranks (a rank is log2 of a
/// decayed value plus time/half-life, so differences of ranks are log2 of value ratios at
/// any common time, and no clock is needed):
/// - co-view: over the user's `seeds` most recent items s_n (n = 0 for the newest), with
///   weight w_n = seedDecay^n, Σ w_n · a(s_n, j) / max_j' a(s_n, j') divided by Σ w_n, where
///   a(s, j) = 2^rank(co_view:s, j) (raw), or 2^(rank(co_view:s, j) − (t_s + t_j)/2) with t
///   the ranks in `co_view:totals` (cosine; a pair whose totals are missing is left out).
///   Only the `neighboursPerSeed` best neighbours of each seed are read; the maximum is
///   over those, seen items included.
/// - popularity: 2^(rank_j − rank of the most popular item) in `item:popularity`, 0 if absent.
/// - trending: the same in `item:trending`.
/// - category: over the user's `categories` favourite categories c (`user:categories:{user}`,
///   ranks r_c), 2^(r_c − the top r_c) · 2^(rank_j − the top rank) in
///   `item:popularity:{c}` for the `itemsPerCategory` most popular items of c (the largest
///   such product when j is in several).
/// - model: the user's factors dotted with item j's, over the largest such product among
///   unseen items (0 if j's is negative, or either vector is missing).
/// The score is the weighted sum (`Scoring`). Candidates are the seeds' neighbours, the
/// `popularCandidates` most popular (and trending) items, the categories' items and the
/// `modelCandidates` unseen items of best model score, without the user's recent items
/// (all of them: what the user has seen). Ties go to the smaller item id. The reason is the
/// largest term: co-view names the seed that gave j the most.
///
/// A user without recent items and without model factors (cold) gets the most popular items of `category` (their
/// session's top category, when known: `item:popularity:{category}`), else of all items,
/// scored by the popularity signal of that zset. A context item (the one on screen) seeds
/// co-view first, also for a cold user. `BusinessRules` then pick from the ranked list.
public struct Recommender {
    public let state: any RecsState
    public let scoring: Scoring
    public let keys: RecsKeys

    public init(state: any RecsState, scoring: Scoring = Scoring(), keys: RecsKeys = RecsKeys()) {
        self.state = state
        self.scoring = scoring
        self.keys = keys
    }

    /// The user's top `k`. `context`: an item the user is looking at now ("what goes with
    /// it"): it seeds co-view ahead of the recent items and is not recommended itself.
    /// `exclude`: more items to leave out. `rules`: applied to the ranked candidates.
    public func recommend(user: String, k: Int, category: String? = nil, context: String? = nil, exclude: Set<String> = [],
                          rules: BusinessRules = BusinessRules()) throws -> [Recommendation] {
        guard k > 0 else { return [] }
        let recent = try state.list(keys.recent(user))
        var seen = Set(recent).union(exclude)
        var seedItems = recent
        if let context {
            seen.insert(context)
            seedItems.removeAll { $0 == context }
            seedItems.insert(context, at: 0)
        }
        // A user whose recent list expired (24 h) may still have the model's factors (7 d).
        let userFactors = scoring.model > 0 ? try state.string(keys.userFactors(user)).flatMap(ItemFactors.parse) : nil
        if seedItems.isEmpty, userFactors == nil { return try popular(k: k, category: category, excluding: seen, rules: rules) }

        var c = Candidates()
        for item in seen { c.seen[c.id(item)] = true }
        var seeds: [String] = []
        if scoring.coView > 0 {
            seeds = Array(seedItems.prefix(scoring.seeds))
            let totalWeight = seeds.indices.reduce(0.0) { $0 + pow(scoring.seedDecay, Double($1)) }
            var totals: [String: Double] = [:]
            let neighbours = try state.tops(seeds.map(keys.coView), limit: scoring.neighboursPerSeed)
            if scoring.cosine {
                let needed = Array(Set(seeds + neighbours.flatMap { $0.map(\.member) })).sorted()
                for (item, score) in zip(needed, try state.scores(keys.coViewTotals, members: needed)) { if let score { totals[item] = score } }
            }
            for (n, seed) in seeds.enumerated() {
                // log2 of a(seed, j), up to a term the same for every j of this seed.
                var logAffinity: [(String, Double)] = []
                for neighbour in neighbours[n] {
                    if scoring.cosine {
                        guard let ts = totals[seed], let tj = totals[neighbour.member] else { continue }
                        logAffinity.append((neighbour.member, neighbour.score - (ts + tj) / 2))
                    } else {
                        logAffinity.append((neighbour.member, neighbour.score))
                    }
                }
                guard let maximum = logAffinity.map(\.1).max() else { continue }
                let weight = pow(scoring.seedDecay, Double(n)) / totalWeight
                for (item, log) in logAffinity {
                    let id = c.id(item)
                    guard !c.seen[id] else { continue }
                    let share = weight * exp2(log - maximum)
                    c.coView[id] += share
                    c.isCandidate[id] = true
                    if share > c.bestSeed[id].share { c.bestSeed[id] = (n, share) }
                }
            }
        }
        var favourites: [ScoredMember] = []
        if scoring.category > 0 {
            favourites = try state.top(keys.categories(user), limit: scoring.categories)
            for (n, (category, items)) in zip(favourites, try state.tops(favourites.map { keys.popularity(in: $0.member) }, limit: scoring.itemsPerCategory)).enumerated() {
                guard let top = items.first else { continue }
                let affinity = exp2(category.score - favourites[0].score)
                for item in items {
                    let id = c.id(item.member)
                    guard !c.seen[id] else { continue }
                    let share = affinity * exp2(item.score - top.score)
                    if share > c.inCategory[id].share { (c.inCategory[id], c.isCandidate[id]) = ((share, n), true) }
                }
            }
        }
        let lists = try state.tops([scoring.popularity > 0 ? keys.popularity : nil, scoring.trending > 0 ? keys.trending : nil].compactMap { $0 },
                                   limit: scoring.popularCandidates)
        let popular = scoring.popularity > 0 ? lists[0] : []
        let trending = scoring.trending > 0 ? lists[lists.count - 1] : []
        // The model scores the whole catalog, by row: no string is touched per item but for
        // the candidates (it was most of a request's time in `eddy serve`).
        var model: (factors: ItemFactors, scores: [Float?], scale: Double)?
        if let userFactors {
            let factors = try state.itemFactors(prefix: keys.itemFactorsPrefix)
            let scores = factors.scores(userFactors)
            let best = Self.best(scores, max(1, scoring.modelCandidates), names: factors.items, skipping: Set(seen.compactMap(factors.row)))
            if let top = best.first {
                model = (factors, scores, Double(scores[top]!))
                for row in best.prefix(scoring.modelCandidates) {
                    let id = c.id(factors.items[row])
                    if !c.seen[id] { c.isCandidate[id] = true }
                }
            }
        }
        for member in popular + trending {
            let id = c.id(member.member)
            if !c.seen[id] { c.isCandidate[id] = true }
        }
        let ordered = c.isCandidate.indices.filter { c.isCandidate[$0] }
        let names = ordered.map { c.names[$0] }
        let popularity = try signal(keys.popularity, weight: scoring.popularity, top: popular.first, for: names)
        let trend = try signal(keys.trending, weight: scoring.trending, top: trending.first, for: names)

        var out: [(id: Int, score: Double, reason: Reason)] = []
        out.reserveCapacity(ordered.count)
        for (i, id) in ordered.enumerated() {
            // Candidates are all unseen: a positive model score counts over the scale.
            let modelShare = model.flatMap { m in m.factors.row(of: names[i]).flatMap { m.scores[$0] }.map { $0 > 0 ? Double($0) / m.scale : 0 } } ?? 0
            let terms = (coView: scoring.coView * c.coView[id], popularity: scoring.popularity * popularity[i], trending: scoring.trending * trend[i],
                         category: scoring.category * c.inCategory[id].share, model: scoring.model * modelShare)
            let score = terms.coView + terms.popularity + terms.trending + terms.category + terms.model
            guard score > 0 else { continue }
            // The largest term names the reason (the first of equal ones).
            var (largest, reason) = (terms.coView, Reason.coView)
            if terms.popularity > largest { (largest, reason) = (terms.popularity, .popular) }
            if terms.trending > largest { (largest, reason) = (terms.trending, .trending) }
            if terms.category > largest { (largest, reason) = (terms.category, .category) }
            if terms.model > largest { reason = .model }
            out.append((id, score, reason))
        }
        out.sort { $0.score != $1.score ? $0.score > $1.score : c.names[$0.id] < c.names[$1.id] }
        // Reasons are written for the candidates the rules go through, not all of them.
        return try select(out.lazy.map { candidate in
            let text: String
            switch candidate.reason {
            case .coView: text = c.bestSeed[candidate.id].seed < 0 ? "" : "co-viewed with \(seeds[c.bestSeed[candidate.id].seed])"
            case .popular: text = "popular now"
            case .trending: text = "trending"
            case .category: text = c.inCategory[candidate.id].category < 0 ? "" : "popular in \(favourites[c.inCategory[candidate.id].category].member)"
            case .model: text = "similar to your taste"
            }
            return Recommendation(item: c.names[candidate.id], score: candidate.score, reason: text)
        }, k: k, rules: rules)
    }

    private enum Reason { case coView, popular, trending, category, model }

    /// The items met while scoring, each by a small id (in the order met), and their
    /// signals by id: arrays rather than dictionaries keyed by item, since hashing item ids
    /// was most of a request's CPU in `eddy serve` (perf, Benchmarks/query).
    private struct Candidates {
        private(set) var names: [String] = []
        private var ids: [String: Int] = [:]
        var seen: [Bool] = []
        var isCandidate: [Bool] = []
        var coView: [Double] = []
        /// The seed (index in the seeds) that gave the largest co-view share; -1: none.
        var bestSeed: [(seed: Int, share: Double)] = []
        /// The favourite category (index) that gave the largest share; -1: none.
        var inCategory: [(share: Double, category: Int)] = []

        init() {
            names.reserveCapacity(1024)
            ids.reserveCapacity(1024)
        }

        mutating func id(_ item: String) -> Int {
            if let id = ids[item] { return id }
            let id = names.count
            ids[item] = id
            names.append(item)
            seen.append(false)
            isCandidate.append(false)
            coView.append(0)
            bestSeed.append((-1, 0))
            inCategory.append((0, -1))
            return id
        }
    }

    /// An item's co-view neighbours, best first: each as its affinity over the best one's
    /// (raw decayed counts, or cosine as in `recommend`).
    public func similar(item: String, k: Int, cosine: Bool = false, rules: BusinessRules = BusinessRules()) throws -> [Recommendation] {
        guard k > 0 else { return [] }
        let neighbours = try state.top(keys.coView(item), limit: max(scoring.neighboursPerSeed, Self.overRead(k, rules) + 1))
        var logAffinity: [(String, Double)] = []
        if cosine {
            let needed = [item] + neighbours.map(\.member)
            let totals = try state.scores(keys.coViewTotals, members: needed)
            guard let ti = totals[0] else { return [] }
            for (neighbour, tj) in zip(neighbours, totals.dropFirst()) {
                if let tj { logAffinity.append((neighbour.member, neighbour.score - (ti + tj) / 2)) }
            }
        } else {
            logAffinity = neighbours.map { ($0.member, $0.score) }
        }
        guard let maximum = logAffinity.map(\.1).max() else { return [] }
        let scored = logAffinity.filter { $0.0 != item }.map { Recommendation(item: $0.0, score: exp2($0.1 - maximum), reason: "co-viewed with \(item)") }
        return try select(Self.ranked(scored), k: k, rules: rules)
    }

    /// The most popular items (of `category` when given and known — of all items when the
    /// category has none, unless `onlyCategory`), each scored 2^(its rank − the top rank).
    /// Trending: by trend, and with a category among the 1000 most trending items those the
    /// catalog puts in it (trending is kept for all items only).
    public func popular(k: Int, category: String? = nil, trending: Bool = false, excluding: Set<String> = [],
                        rules: BusinessRules = BusinessRules(), onlyCategory: Bool = false) throws -> [Recommendation] {
        guard k > 0 else { return [] }
        let wanted = Self.overRead(k, rules) + excluding.count
        var key = trending ? keys.trending : keys.popularity, reason = trending ? "trending" : "popular now"
        var members: [ScoredMember] = []
        if let category, trending {
            let candidates = try state.top(keys.trending, limit: 1000)
            let rows = try state.fields(candidates.map { keys.item($0.member) }, ["category"])
            members = zip(candidates, rows).filter { $0.1.first == category }.map(\.0)
            reason = "trending in \(category)"
        } else if let category {
            members = try state.top(keys.popularity(in: category), limit: wanted)
            if !members.isEmpty { key = keys.popularity(in: category); reason = "popular in \(category)" }
        }
        if members.isEmpty, category == nil || !(trending || onlyCategory) { members = try state.top(key, limit: wanted) }
        guard let top = members.first else { return [] }
        let scored = members.filter { !excluding.contains($0.member) }.map { Recommendation(item: $0.member, score: exp2($0.score - top.score), reason: reason) }
        return try select(Self.ranked(scored), k: k, rules: rules)
    }

    /// Candidates read when rules may leave some out: four times what is asked, at most 1000.
    private static func overRead(_ k: Int, _ rules: BusinessRules) -> Int { rules.readsCatalog ? max(k, min(4 * k, 1000)) : k }

    /// The first `k` ranked candidates the rules admit, at most `maxPerCategory` per
    /// category; the catalog is read in chunks, as far down the ranking as needed.
    func select<Ranked: RandomAccessCollection>(_ ranked: Ranked, k: Int, rules: BusinessRules) throws -> [Recommendation]
    where Ranked.Element == Recommendation, Ranked.Index == Int {
        guard rules.readsCatalog else { return Array(ranked.prefix(k)) }
        var out: [Recommendation] = []
        var perCategory: [String: Int] = [:]
        var start = 0
        while out.count < k, start < ranked.count {
            let chunk = ranked[start..<min(ranked.count, start + max(2 * k, 32))]
            start = chunk.endIndex
            let rows = try state.fields(chunk.map { keys.item($0.item) }, CatalogRow.fieldNames)
            for (candidate, fields) in zip(chunk, rows) {
                let row = CatalogRow(fields: fields)
                guard rules.admits(row) else { continue }
                if let cap = rules.maxPerCategory, let category = row?.category {
                    guard perCategory[category, default: 0] < cap else { continue }
                    perCategory[category, default: 0] += 1
                }
                out.append(candidate)
                if out.count == k { break }
            }
        }
        return out
    }

    /// The popularity signal of `items` in zset `key`: 2^(rank − the top rank), 0 if absent.
    private func signal(_ key: String, weight: Double, top: ScoredMember?, for items: [String]) throws -> [Double] {
        guard weight > 0, let top else { return items.map { _ in 0 } }
        // At most 1 also when the top and the scores were read at different moments (serve
        // keeps item-level state up to a second).
        return try state.scores(key, members: items).map { $0.map { min(1, exp2($0 - top.score)) } ?? 0 }
    }

    /// The rows of the `n` highest positive scores (ties to the smaller name), best first,
    /// leaving out `skipping`, without sorting them all: a model scores the whole catalog
    /// for every request.
    static func best(_ scores: [Float?], _ n: Int, names: [String], skipping: Set<Int>) -> [Int] {
        guard n > 0 else { return [] }
        func before(_ a: Int, _ b: Int) -> Bool { scores[a]! != scores[b]! ? scores[a]! > scores[b]! : names[a] < names[b] }
        var kept: [Int] = []
        // Below the n-th best kept nothing is compared further (most rows, once n are kept).
        var threshold: Float = 0
        for row in scores.indices {
            guard let s = scores[row], s > 0, s >= threshold else { continue }
            if kept.count == n, !before(row, kept[n - 1]) { continue }
            if skipping.contains(row) { continue }
            var (low, high) = (0, kept.count)  // the first kept that `row` goes before
            while low < high {
                let middle = (low + high) / 2
                if before(row, kept[middle]) { high = middle } else { low = middle + 1 }
            }
            let at = low
            kept.insert(row, at: at)
            if kept.count > n { kept.removeLast() }
            if kept.count == n { threshold = scores[kept[n - 1]]! }
        }
        return kept
    }

    /// By score, highest first; ties to the smaller item id.
    static func ranked(_ items: [Recommendation]) -> [Recommendation] {
        items.sorted { $0.score != $1.score ? $0.score > $1.score : $0.item < $1.item }
    }
}
