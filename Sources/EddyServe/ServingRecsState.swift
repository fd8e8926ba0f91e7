import EddyRecs
import EddyRedis

/// What a request scores from:
/// - its user's keys (recent items, factors, favourite categories, cart version, the
///   session's top category), read in one pipeline before scoring (`UserReads`): fresh on
///   every request;
/// - item-level keys (co-view, popularity, trending, catalog) through the service's
///   `ItemStateCache` (nil: from Redis each time);
/// - the model's item factors from the service's snapshot (`ModelSnapshot`): reading them
///   all is a pass over the catalog (SCAN and MGET), fine every few seconds, not per request.
/// Anything else is read from Redis when asked.
struct ServingRecsState: RecsState {
    let redis: RedisRecsState
    let keys: RecsKeys
    let user: UserReads?
    let items: ItemStateCache.Reader?
    let factors: ItemFactors

    init(redis: RedisRecsState, keys: RecsKeys, user: UserReads? = nil, items: ItemStateCache?, factors: ItemFactors = ItemFactors()) {
        self.redis = redis
        self.keys = keys
        self.user = user
        self.items = items?.reading(redis)
        self.factors = factors
    }

    /// A user's keys as one round trip read them.
    struct UserReads {
        let user: String
        let recent: [String]
        /// The model's vector (nil: not read, or none).
        let factors: String?
        let readFactors: Bool
        /// The favourite categories, as many as `categoriesRead` asked for.
        let categories: [ScoredMember]
        let categoriesRead: Int
        let cartVersion: String?
        /// The session's `top_category` (nil: no session asked, or none).
        let sessionCategory: String?

        static func read(_ redis: RedisConnection, keys: RecsKeys, user: String, session: String?, scoring: Scoring) throws -> UserReads {
            let readFactors = scoring.model > 0
            let categoriesRead = scoring.category > 0 ? scoring.categories : 0
            var commands = [RedisCommand(["LRANGE", keys.recent(user), "0", "-1"]), RedisCommand(["GET", keys.cartVersion(user)])]
            if readFactors { commands.append(RedisCommand(["GET", keys.userFactors(user)])) }
            if categoriesRead > 0 { commands.append(RedisCommand(["ZREVRANGE", keys.categories(user), "0", String(categoriesRead - 1), "WITHSCORES"])) }
            if let session { commands.append(RedisCommand(["HMGET", keys.session(session), "top_category"])) }
            let replies = try redis.pipeline(commands)
            if let error = replies.lazy.compactMap(\.firstError).first { throw RedisError("redis: \(error)") }
            var next = 2
            func take() -> RedisReply { defer { next += 1 }; return replies[next] }
            let factors = readFactors ? take().string : nil
            let categories = categoriesRead > 0 ? RedisRecsState.scoredMembers(take()) : []
            let sessionCategory = session == nil ? nil : take().strings.first
            return UserReads(user: user, recent: replies[0].strings, factors: factors, readFactors: readFactors, categories: categories,
                             categoriesRead: categoriesRead, cartVersion: replies[1].string, sessionCategory: sessionCategory)
        }
    }

    func list(_ key: String) throws -> [String] {
        if let user, key == keys.recent(user.user) { return user.recent }
        return try redis.list(key)
    }

    func top(_ key: String, limit: Int) throws -> [ScoredMember] { try tops([key], limit: limit)[0] }

    func tops(_ keys: [String], limit: Int) throws -> [[ScoredMember]] {
        if let user, keys.count == 1, keys[0] == self.keys.categories(user.user), limit <= user.categoriesRead {
            return [Array(user.categories.prefix(limit))]
        }
        if let items, keys.allSatisfy(self.keys.isItemLevel) { return try items.tops(keys, limit: limit) }
        return try redis.tops(keys, limit: limit)
    }

    func scores(_ key: String, members: [String]) throws -> [Double?] {
        if let items, keys.isItemLevel(key) { return try items.scores(key, members: members) }
        return try redis.scores(key, members: members)
    }

    func fields(_ keys: [String], _ names: [String]) throws -> [[String?]] {
        if let items, keys.allSatisfy(self.keys.isItemLevel) { return try items.fields(keys, names) }
        return try redis.fields(keys, names)
    }

    func string(_ key: String) throws -> String? {
        if let user, user.readFactors, key == keys.userFactors(user.user) { return user.factors }
        return try redis.string(key)
    }

    func itemFactors(prefix: String) throws -> ItemFactors { factors }
}
