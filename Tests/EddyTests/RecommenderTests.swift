import EddyRecs
import Foundation
import XCTest

/// `Recommender` over a small state whose scores are worked out by hand below, from the
/// rules in its documentation.
final class RecommenderTests: XCTestCase {
    /// A `RecsState` over dictionaries.
    struct DictionaryState: RecsState {
        var lists: [String: [String]] = [:]
        var zsets: [String: [String: Double]] = [:]

        func list(_ key: String) throws -> [String] { lists[key] ?? [] }
        func top(_ key: String, limit: Int) throws -> [ScoredMember] {
            (zsets[key] ?? [:]).sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }.prefix(limit).map { ScoredMember($0.key, $0.value) }
        }
        var hashes: [String: [String: String]] = [:]
        func scores(_ key: String, members: [String]) throws -> [Double?] { members.map { zsets[key]?[$0] } }
        func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] { keys.map { key in names.map { hashes[key]?[$0] } } }
        var strings: [String: String] = [:]
        func string(_ key: String) throws -> String? { strings[key] }
        func itemFactors(prefix: String) throws -> ItemFactors {
            var factors = ItemFactors()
            for (key, text) in strings.sorted(by: { $0.key < $1.key }) where key.hasPrefix(prefix) {
                if let v = ItemFactors.parse(text) { factors.append(String(key.dropFirst(prefix.count)), v) }
            }
            return factors
        }
    }

    private let state = DictionaryState(
        lists: ["user:recent:u": ["a", "b"]],
        zsets: ["co_view:a": ["x": 10, "y": 9, "b": 11],
                "co_view:b": ["y": 5, "z": 5, "a": 6],
                "item:popularity": ["p": 100, "x": 98, "y": 99],
                "item:popularity:c1": ["q": 7, "r": 6],
                "item:popularity:c2": ["x": 3, "s": 2],
                "user:categories:u": ["c1": 5, "c2": 4],
                "co_view:totals": ["a": 12, "b": 8, "x": 10, "y": 4, "z": 6]])

    func testTheBlendWeighsRecentSeedsMoreAndExcludesSeenItems() throws {
        var scoring = Scoring(coView: 1, popularity: 0.5, category: 0)
        scoring.seedDecay = 0.5
        let got = try Recommender(state: state, scoring: scoring).recommend(user: "u", k: 10)
        // Seed weights: a (newest) 1/1.5, b 0.5/1.5. Seed a's best neighbour is b (rank 11):
        // x = 2^(10−11) = 1/2, y = 2^(9−11) = 1/4. Seed b's best is a (6): y = z = 1/2.
        // co-view: x = 2/3·1/2 = 1/3; y = 2/3·1/4 + 1/3·1/2 = 1/3; z = 1/3·1/2 = 1/6.
        // popularity (top p at 100): p = 1, x = 2^−2, y = 2^−1, z = 0; weighted by 1/2.
        let expected: [(String, Double, String)] = [
            ("y", 1.0 / 3 + 0.25, "co-viewed with a"),  // a and b give y 1/6 each: the newer seed
            ("p", 0.5, "popular now"),
            ("x", 1.0 / 3 + 0.125, "co-viewed with a"),
            ("z", 1.0 / 6, "co-viewed with b"),
        ]
        XCTAssertEqual(got.map(\.item), expected.map(\.0))
        for (r, e) in zip(got, expected) {
            XCTAssertEqual(r.score, e.1, accuracy: 1e-12, r.item)
            XCTAssertEqual(r.reason, e.2, r.item)
        }
        XCTAssertEqual(try Recommender(state: state, scoring: scoring).recommend(user: "u", k: 2).map(\.item), ["y", "p"])
    }

    func testCosineNormalizesByBothItemsTotals() throws {
        var scoring = Scoring.coViewOnly(cosine: true)
        scoring.seedDecay = 0.5
        let got = try Recommender(state: state, scoring: scoring).recommend(user: "u", k: 10)
        // log2 cosine = rank − (t_seed + t_j)/2. Seed a (t 12): x 10 − 11 = −1, y 9 − 8 = 1,
        // b 11 − 10 = 1 → max 1: x 2^−2, y 1. Seed b (t 8): y 5 − 6 = −1, z 5 − 7 = −2,
        // a 6 − 10 = −4 → max −1: y 1, z 2^−1.
        // y = 2/3·1 + 1/3·1 = 1; x = 2/3·1/4 = 1/6; z = 1/3·1/2 = 1/6.
        XCTAssertEqual(got.map(\.item), ["y", "x", "z"])
        XCTAssertEqual(got.map(\.score), [1, 1.0 / 6, 1.0 / 6].map { $0 }, "x and z tie: the smaller id first")
    }

    func testTheModelScoresEveryUnseenItemByTheDotProduct() throws {
        var withModel = state
        withModel.strings = ["user:emb:u": "[1,2]", "item:emb:a": "[5,5]", "item:emb:x": "[1,0.5]", "item:emb:q": "[0,1.5]",
                             "item:emb:m": "[-1,-1]", "item:emb:bad": "[1,2,3]"]
        // Dot products: a 15 (seen), x 2, q 3, m −3 (left out); bad has 3 numbers, not 2
        // (left out). Best unseen: q. Model shares: q 1, x 2/3.
        let alone = try Recommender(state: withModel, scoring: .modelOnly).recommend(user: "u", k: 10)
        XCTAssertEqual(alone.map(\.item), ["q", "x"])
        XCTAssertEqual(alone.map(\.score), [1, 2.0 / 3])
        XCTAssertEqual(Set(alone.map(\.reason)), ["similar to your taste"])
        // Blended with popularity (weight 1): p 1, x 2^−2 + 2/3, y 2^−1, q 1 (not popular).
        let blend = try Recommender(state: withModel, scoring: Scoring(coView: 0, popularity: 1, category: 0, model: 1)).recommend(user: "u", k: 10)
        XCTAssertEqual(blend.map(\.item), ["p", "q", "x", "y"])
        XCTAssertEqual(blend[2].score, 0.25 + 2.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(blend[2].reason, "similar to your taste")
        // No factors for the user: no model signal.
        XCTAssertEqual(try Recommender(state: state, scoring: .modelOnly).recommend(user: "u", k: 10), [])
        // A user whose recent list expired still has factors: the model answers, not the
        // popular items; a vector of 3 numbers scores only the item of 3 (left over from a
        // model with other factors).
        withModel.strings["user:emb:back"] = "[0,1]"
        withModel.strings["user:emb:three"] = "[1,1,1]"
        XCTAssertEqual(try Recommender(state: withModel, scoring: .modelOnly).recommend(user: "back", k: 10).map(\.item), ["a", "q", "x"])
        XCTAssertEqual(try Recommender(state: withModel, scoring: .modelOnly).recommend(user: "three", k: 10).map(\.item), ["bad"])
    }

    func testAnItemGivenTwiceKeepsItsFirstVectorSoASeenItemNeverScores() throws {
        var factors = ItemFactors()
        factors.append("a", [1])
        factors.append("x", [1])
        factors.append("a", [5])  // seen by the user: its second vector must not count either
        XCTAssertEqual(factors.items, ["a", "x"])
        XCTAssertEqual(factors.scores([2]), [2, 2])
        struct Fixed: RecsState {
            let factors: ItemFactors
            func list(_ key: String) throws -> [String] { key == "user:recent:u" ? ["a"] : [] }
            func top(_ key: String, limit: Int) throws -> [ScoredMember] { [] }
            func scores(_ key: String, members: [String]) throws -> [Double?] { members.map { _ in nil } }
            func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] { keys.map { _ in names.map { _ in nil } } }
            func string(_ key: String) throws -> String? { key == "user:emb:u" ? "[1]" : nil }
            func itemFactors(prefix: String) throws -> ItemFactors { factors }
        }
        let got = try Recommender(state: Fixed(factors: factors), scoring: .modelOnly).recommend(user: "u", k: 10)
        XCTAssertEqual(got, [Recommendation(item: "x", score: 1, reason: "similar to your taste")])
    }

    func testTheUsersFavouriteCategoriesGiveTheirPopularItems() throws {
        let got = try Recommender(state: state, scoring: .categoryOnly).recommend(user: "u", k: 10)
        // Affinity: c1 (rank 5) 1, c2 (4) 2^−1. In c1 (top q at 7): q 1, r 2^−1; in c2 (top
        // x at 3): x 1/2·1, s 1/2·2^−1. r and x tie: the smaller id first.
        XCTAssertEqual(got, [Recommendation(item: "q", score: 1, reason: "popular in c1"),
                             Recommendation(item: "r", score: 0.5, reason: "popular in c1"),
                             Recommendation(item: "x", score: 0.5, reason: "popular in c2"),
                             Recommendation(item: "s", score: 0.25, reason: "popular in c2")])
    }

    func testColdUsersGetPopularItemsOfTheirCategoryWhenKnown() throws {
        let recommender = Recommender(state: state)
        let inCategory = try recommender.recommend(user: "new", k: 5, category: "c1")
        XCTAssertEqual(inCategory, [Recommendation(item: "q", score: 1, reason: "popular in c1"),
                                    Recommendation(item: "r", score: 0.5, reason: "popular in c1")])
        let anywhere = try recommender.recommend(user: "new", k: 2, category: "unknown")
        XCTAssertEqual(anywhere, [Recommendation(item: "p", score: 1, reason: "popular now"),
                                  Recommendation(item: "y", score: 0.5, reason: "popular now")])
        XCTAssertEqual(try recommender.recommend(user: "new", k: 0), [])
    }

    /// The catalog of the rules tests: p out of stock, x's margin low, z unknown.
    private var withCatalog: DictionaryState {
        var s = state
        s.hashes = ["catalog:p": ["category": "c1", "in_stock": "false", "margin": "0.3"],
                    "catalog:y": ["category": "c1", "in_stock": "true", "margin": "0.3"],
                    "catalog:x": ["category": "c2", "in_stock": "true", "margin": "0.05"]]
        s.zsets["item:trending"] = ["t": 3, "p": 1]
        return s
    }

    func testBusinessRulesKeepTheBestItemsThatPass() throws {
        let recommender = Recommender(state: withCatalog)
        // Cold: popular p, y, x in that order.
        XCTAssertEqual(try recommender.recommend(user: "new", k: 2, rules: BusinessRules(inStockOnly: true)).map(\.item), ["y", "x"],
                       "an out-of-stock item is never recommended, and the next best fills its place")
        XCTAssertEqual(try recommender.recommend(user: "new", k: 3, rules: BusinessRules(inStockOnly: true, minMargin: 0.1)).map(\.item), ["y"])
        XCTAssertEqual(try recommender.recommend(user: "new", k: 3, rules: BusinessRules(excludedCategories: ["c1"])).map(\.item), ["x"])
    }

    func testTheCategoryCapAndUnknownItems() throws {
        var scoring = Scoring(coView: 1, popularity: 0.5, category: 0)
        scoring.seedDecay = 0.5
        let recommender = Recommender(state: withCatalog, scoring: scoring)
        // Ranked as in the first test: y (c1), p (c1), x (c2), z (not in the catalog).
        XCTAssertEqual(try recommender.recommend(user: "u", k: 10, rules: BusinessRules(maxPerCategory: 1)).map(\.item), ["y", "x", "z"])
        XCTAssertEqual(try recommender.recommend(user: "u", k: 10, rules: BusinessRules(maxPerCategory: 1, unknownItems: .drop)).map(\.item), ["y", "x"])
        XCTAssertEqual(try recommender.recommend(user: "u", k: 10, rules: BusinessRules(maxPerCategory: 2)).map(\.item), ["y", "p", "x", "z"])
    }

    func testAContextItemSeedsCoViewFirstAndIsNotRecommended() throws {
        // A cold user looking at a: a's neighbours b 11, x 10, y 9 → 1, 1/2, 1/4.
        let got = try Recommender(state: state, scoring: .coViewOnly(cosine: false)).recommend(user: "new", k: 5, context: "a")
        XCTAssertEqual(got, [Recommendation(item: "b", score: 1, reason: "co-viewed with a"),
                             Recommendation(item: "x", score: 0.5, reason: "co-viewed with a"),
                             Recommendation(item: "y", score: 0.25, reason: "co-viewed with a")])
        // For u (recent a, b), with b as the context: b seeds first and is left out.
        XCTAssertFalse(try Recommender(state: state).recommend(user: "u", k: 10, context: "b").contains { $0.item == "b" })
    }

    func testExcludedItemsAreLeftOut() throws {
        var scoring = Scoring.coViewOnly(cosine: false)
        scoring.seedDecay = 0.5
        // Co-view as in the first test: x 1/3, y 1/3, z 1/6.
        XCTAssertEqual(try Recommender(state: state, scoring: scoring).recommend(user: "u", k: 10, exclude: ["y"]).map(\.item), ["x", "z"])
        XCTAssertEqual(try Recommender(state: state).recommend(user: "new", k: 2, exclude: ["p"]).map(\.item), ["y", "x"])
    }

    func testSimilarItemsAreTheCoViewNeighboursRawOrCosine() throws {
        let recommender = Recommender(state: state)
        XCTAssertEqual(try recommender.similar(item: "a", k: 2), [Recommendation(item: "b", score: 1, reason: "co-viewed with a"),
                                                                 Recommendation(item: "x", score: 0.5, reason: "co-viewed with a")])
        // Cosine, as in the cosine test's seed a: b 1, y 1, x 2^−2.
        XCTAssertEqual(try recommender.similar(item: "a", k: 5, cosine: true).map(\.score), [1, 1, 0.25])
        XCTAssertEqual(try recommender.similar(item: "a", k: 5, cosine: true).map(\.item), ["b", "y", "x"])
        XCTAssertEqual(try recommender.similar(item: "unknown", k: 5), [])
    }

    func testPopularAndTrending() throws {
        let recommender = Recommender(state: withCatalog)
        XCTAssertEqual(try recommender.popular(k: 2, trending: true), [Recommendation(item: "t", score: 1, reason: "trending"),
                                                                      Recommendation(item: "p", score: 0.25, reason: "trending")])
        XCTAssertEqual(try recommender.popular(k: 5, category: "c2").map(\.item), ["x", "s"])
        // Trending in a category: t is not in the catalog, p is in c1.
        XCTAssertEqual(try recommender.popular(k: 5, category: "c1", trending: true), [Recommendation(item: "p", score: 1, reason: "trending in c1")])
        XCTAssertEqual(try recommender.popular(k: 5, category: "c9", trending: true), [])
    }
}

/// HR and NDCG worked out by hand.
final class RankingQualityTests: XCTestCase {
    func testHitRateAndNDCGCountThePositionOfTheItemThatCameNext() {
        var q = RankingQuality(cutoffs: [1, 3])
        q.add(recommended: ["a", "b", "c"], actual: "a")  // position 0: a hit at 1 and 3, gain 1
        q.add(recommended: ["a", "b", "c"], actual: "c")  // position 2: a hit at 3, gain 1/log2(4) = 1/2
        q.add(recommended: ["a", "b", "c"], actual: "z")  // a miss
        q.add(recommended: [], actual: "a")               // nothing recommended: a miss
        XCTAssertEqual(q.trials, 4)
        XCTAssertEqual(q.hitRate(at: 1), 0.25)
        XCTAssertEqual(q.hitRate(at: 3), 0.5)
        XCTAssertEqual(q.ndcg(at: 1), 0.25)
        XCTAssertEqual(q.ndcg(at: 3), 1.5 / 4)
        XCTAssertEqual(q.hitRate(at: 2), 0, "a cutoff not measured")
    }
}
