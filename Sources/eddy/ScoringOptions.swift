import ArgumentParser
import EddyRecs

/// The blend's weights, for `eddy recommend` and the blend row of `eddy eval`.
struct ScoringOptions: ParsableArguments {
    @Option(name: .customLong("co-view"), help: "Weight of co-view.") var coView: Double = Scoring().coView
    @Option(help: "Weight of decayed popularity.") var popularity: Double = Scoring().popularity
    @Option(help: "Weight of trending.") var trending: Double = Scoring().trending
    @Option(name: .customLong("user-categories"), help: "Weight of popularity in the user's favourite categories.") var category: Double = Scoring().category
    @Option(help: "Weight of the online model's score.") var model: Double = Scoring().model
    @Flag(help: "Cosine-normalized co-view instead of raw decayed counts.") var cosine = false

    func validate() throws {
        for (name, weight) in [("co-view", coView), ("popularity", popularity), ("trending", trending), ("user-categories", category), ("model", model)] where !(weight >= 0) || !weight.isFinite {
            throw ValidationError("--\(name) must be a non-negative number, got \(weight)")
        }
    }

    var scoring: Scoring { Scoring(coView: coView, popularity: popularity, trending: trending, category: category, model: model, cosine: cosine) }
}
