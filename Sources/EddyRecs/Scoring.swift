/// How `Recommender` blends its signals. Each signal is a number in [0, 1] per candidate
/// (see `Recommender`); the score is their weighted sum. The defaults are the best blend
/// `eddy eval` measured on the generator's data (README, "Recommendation quality"):
/// co-view first, the online model and popularity in the user's categories next, global
/// popularity only to fill a short list.
public struct Scoring: Equatable, Sendable {
    /// Co-view with the user's recent items.
    public var coView = 1.0
    /// Global decayed popularity (`item:popularity`).
    public var popularity = 0.001
    /// Trending (`item:trending`).
    public var trending = 0.0
    /// Popularity within the user's favourite categories (`user:categories:{user}` and
    /// `item:popularity:{category}`).
    public var category = 0.5
    /// The online model: the user's factors dotted with each item's (`user:emb:{user}`,
    /// `item:emb:{item}`). 0.5 was the best of {0.25, 0.5, 1, 2} on a validation split
    /// inside the evaluation's prefix (README).
    public var model = 0.5
    /// Co-view normalized by both items' own counts (cosine, from `co_view:totals`) instead
    /// of the raw decayed co-view counts.
    public var cosine = false
    /// How many of the user's most recent items seed co-view candidates.
    public var seeds = 10
    /// The n-th most recent seed (from 0) weighs `seedDecay`^n: recent items count more.
    public var seedDecay = 0.8
    /// Neighbours read per seed, and popular (or trending) items read as candidates.
    public var neighboursPerSeed = 50
    public var popularCandidates = 100
    /// How many of the user's favourite categories, and items read per category.
    public var categories = 3
    public var itemsPerCategory = 50
    /// Items of best model score read as candidates.
    public var modelCandidates = 100

    public init(coView: Double = 1.0, popularity: Double = 0.001, trending: Double = 0.0, category: Double = 0.5, model: Double = 0.5,
                cosine: Bool = false) {
        self.coView = coView
        self.popularity = popularity
        self.trending = trending
        self.category = category
        self.model = model
        self.cosine = cosine
    }

    /// Popularity alone (the usual baseline).
    public static let popularityOnly = Scoring(coView: 0, popularity: 1, category: 0, model: 0)
    /// Popularity within the user's favourite categories alone.
    public static let categoryOnly = Scoring(coView: 0, popularity: 0, category: 1, model: 0)
    /// Co-view alone, raw or cosine.
    public static func coViewOnly(cosine: Bool) -> Scoring { Scoring(coView: 1, popularity: 0, category: 0, model: 0, cosine: cosine) }
    /// The online model alone.
    public static let modelOnly = Scoring(coView: 0, popularity: 0, category: 0, model: 1)
}

/// One recommended item: its score and why.
public struct Recommendation: Equatable, Sendable, Codable {
    public let item: String
    public let score: Double
    /// "co-viewed with i12", "popular now", "trending", "popular in c3", "similar to your taste".
    public let reason: String

    public init(item: String, score: Double, reason: String) {
        self.item = item
        self.score = score
        self.reason = reason
    }
}
