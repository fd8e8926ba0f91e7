import EddyRecs
import EddyRedis

/// What a request scores from: Redis for everything but the model's item factors, which
/// come from the service's snapshot (`ModelSnapshot`). Reading every item's factors is a
/// pass over the catalog (SCAN and MGET), fine every few seconds, not once per request.
struct ServingRecsState: RecsState {
    let redis: RedisRecsState
    let factors: ItemFactors

    func list(_ key: String) throws -> [String] { try redis.list(key) }
    func top(_ key: String, limit: Int) throws -> [ScoredMember] { try redis.top(key, limit: limit) }
    func tops(_ keys: [String], limit: Int) throws -> [[ScoredMember]] { try redis.tops(keys, limit: limit) }
    func scores(_ key: String, members: [String]) throws -> [Double?] { try redis.scores(key, members: members) }
    func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] { try redis.fields(keys, names) }
    func string(_ key: String) throws -> String? { try redis.string(key) }
    func itemFactors(prefix: String) throws -> ItemFactors { factors }
}
