import ArgumentParser
import EddyConfig
import EddyRecs
import EddyRedis
import Foundation

struct Recommend: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a user's top-k from the state Topologies/recs.yaml keeps in Redis (EddyRecs), as JSON.",
        discussion: "Co-view of the user's recent items, blended with popularity (and trending); seen items excluded; a reason per item. A user without recent items gets popular items, of --category when given.")

    @Option(help: "The user id.") var user: String
    @Option(name: .short, help: "How many items.") var k: Int = 10
    @Option(help: "A cold user's category (e.g. their session's top category).") var category: String?
    @OptionGroup var weights: ScoringOptions
    @Option(help: "The runtime config file (names Redis).") var config: String = "configs/local.yaml"

    func validate() throws {
        if k <= 0 || k > 1000 { throw ValidationError("-k must be between 1 and 1000, got \(k)") }
    }

    func run() throws {
        let runtime = try RuntimeConfigFile.load(path: config)
        let redis = try RedisConnection(host: runtime.redisHost, port: runtime.redisPort, timeoutMs: runtime.redisTimeoutMs, credentials: runtime.redisCredentials)
        let recommendations = try Recommender(state: RedisRecsState(redis), scoring: weights.scoring).recommend(user: user, k: k, category: category)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(recommendations), as: UTF8.self))
    }
}
