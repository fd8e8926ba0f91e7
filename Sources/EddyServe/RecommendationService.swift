import EddyRecs
import EddyRedis
import Foundation
import Logging
import Synchronization

/// What the query routes compute, from the state in Redis, with `EddyRecs` (the code
/// `eddy recommend` and `eddy eval` run): each answer within a latency budget, from a
/// result cache when it may, through a circuit breaker, and from a snapshot of popular
/// items when Redis is slow, failing or held off by the breaker (`fallback`). Never throws:
/// every request gets an answer.
final class RecommendationService: Sendable {
    struct Query: Sendable {
        var user: String
        var k: Int
        var session: String?
        var item: String?
        var category: String?
        var exclude: [String] = []
    }

    struct Answer: Sendable {
        let items: [Recommendation]
        let variant: String
        /// Why popular items were answered instead (nil: a computed answer).
        let fallback: FallbackReason?
        let cached: Bool
    }

    enum FallbackReason: String, Error, CaseIterable {
        /// Not computed within the budget.
        case budget
        /// Redis answered with an error, or could not be reached.
        case redisError = "redis_error"
        /// The circuit breaker holds calls back after repeated failures.
        case circuitOpen = "circuit_open"
    }

    let config: ServeConfig.Recommendations
    /// The keys of the namespace answered from: the promoted one, else the configured one
    /// (the snapshot's: both are read together).
    var keys: RecsKeys { snapshot.keys }
    var namespace: String { Self.namespace(of: keys) }
    let assignment: ExperimentAssignment
    private let redis: RedisPool
    private let metrics: ServeMetrics
    private let cache: ResultCache?
    /// Item-level state shared by requests (nil: read from Redis each time).
    private let items: ItemStateCache?
    private let breaker = Mutex(CircuitBreaker())
    private let snapshot: PopularSnapshot
    private let model = ModelSnapshot()
    private let refresher: Task<Void, Never>
    private let modelRefresher: Task<Void, Never>?
    private let logger: Logger
    /// How often the active namespace and the fallback snapshot are read again.
    static let refreshInterval = Duration.seconds(1)

    init(config: ServeConfig.Recommendations, redis: RedisPool, metrics: ServeMetrics, logger: Logger) {
        self.config = config
        let configured = RecsKeys(prefix: Self.prefix(of: config.namespace))
        snapshot = PopularSnapshot(keys: configured)
        assignment = ExperimentAssignment(config.experiment, defaultScoring: config.scoring)
        self.redis = redis
        self.metrics = metrics
        self.logger = logger
        cache = config.cacheTTLSeconds > 0 ? ResultCache(ttl: .seconds(config.cacheTTLSeconds), capacity: config.cacheMaxEntries) : nil
        items = config.itemStateTTLMs > 0 ? ItemStateCache(ttl: .milliseconds(config.itemStateTTLMs)) : nil
        refresher = Task.detached { [redis, snapshot, logger] in
            while !Task.isCancelled {
                let outcome = await redis.run(within: .seconds(1)) { connection -> (RecsKeys, PopularSnapshot.Contents) in
                    let reply = try connection.send("GET", ServeNamespace.activeKey)
                    if let error = reply.firstError { throw RedisError("redis: \(error)") }
                    let keys = reply.string.map { RecsKeys(prefix: Self.prefix(of: $0)) } ?? configured
                    return (keys, try PopularSnapshot.read(RedisRecsState(connection), keys: keys))
                }
                if case .value(let (keys, contents)) = outcome {
                    let previous = snapshot.keys
                    if previous.prefix != keys.prefix {
                        logger.notice("answering from namespace \(Self.namespace(of: keys)) (was \(Self.namespace(of: previous)))")
                    }
                    snapshot.replace(with: contents)
                }
                try? await Task.sleep(for: Self.refreshInterval)
            }
        }
        modelRefresher = !assignment.weighsModel ? nil : Task.detached { [redis, snapshot, model, logger] in
            var failing = false
            while !Task.isCancelled {
                let keys = snapshot.keys
                let read = await redis.run(within: .seconds(30)) { connection in
                    try RedisRecsState(connection).itemFactors(prefix: keys.itemFactorsPrefix)
                }
                if case .value(let factors) = read {
                    model.replace(with: factors, readUnder: keys)
                    if failing { logger.notice("read the model's item factors again (\(factors.items.count) items)") }
                    failing = false
                } else if !failing {
                    let why: String
                    switch read {
                    case .failed(let error): why = "\(error)"
                    case .late: why = "no answer within 30 s"
                    case .value: why = ""
                    }
                    logger.warning("could not read the model's item factors (\(why)); answers leave the model out until a read succeeds")
                    failing = true
                }
                model.endFirstRead()
                // After a namespace switch, read the new one's at once.
                let started = ContinuousClock.now
                while !Task.isCancelled, started.duration(to: .now) < ModelSnapshot.refreshInterval, snapshot.keys.prefix == model.prefix {
                    try? await Task.sleep(for: Self.refreshInterval)
                }
            }
        }
    }

    /// `v2` → `v2:`; empty → no prefix.
    static func prefix(of namespace: String) -> String { namespace.isEmpty ? "" : namespace + ":" }
    static func namespace(of keys: RecsKeys) -> String { keys.prefix.isEmpty ? "(none)" : String(keys.prefix.dropLast()) }

    func stop() {
        refresher.cancel()
        modelRefresher?.cancel()
    }

    /// Why answers are not whole yet: a variant weighs the model and its item factors
    /// have not been read since start (a large model takes a while); nil when ready.
    var notReadyReason: String? {
        modelRefresher != nil && !model.firstReadEnded ? "the model's item factors have not been read from Redis yet" : nil
    }

    /// Waits up to `limit` for the first read of the model's item factors, so a serve that
    /// starts over a small model is ready when it listens.
    func waitForFirstModelRead(upTo limit: Duration) {
        let deadline = ContinuousClock.now + limit
        while notReadyReason != nil, ContinuousClock.now < deadline { usleep(5_000) }
    }

    var circuitIsOpen: Bool { breaker.withLock { $0.isOpen } }
    var circuitOpenings: Int { breaker.withLock { $0.openings } }

    // MARK: recommendations

    func recommend(_ query: Query) async -> Answer {
        let variant = assignment.variant(of: query.user)
        let answer: Answer
        switch await guarded({ [self] connection in try compute(query, variant: variant, connection) }) {
        case .success(let (items, cached)):
            metrics.cacheLookup(hit: cached, enabled: cache != nil)
            answer = Answer(items: items, variant: variant.name, fallback: nil, cached: cached)
        case .failure(let reason):
            metrics.fallback(reason)
            answer = Answer(items: fallbackItems(k: query.k, excluding: Set(query.exclude + [query.item].compactMap { $0 })),
                            variant: variant.name, fallback: reason, cached: false)
        }
        metrics.served(experiment: assignment.experiment, variant: variant.name, items: answer.items.count, fallback: answer.fallback?.rawValue)
        return answer
    }

    /// One answer on a pool thread: the user's keys in one round trip, then the cache
    /// (keyed by the cart version), else the recommender. A cached answer is filtered by
    /// the user's recent items as just read: an item seen since the answer was computed is
    /// left out (the answer may then hold fewer than k items until the TTL or a cart event
    /// renews it).
    private func compute(_ query: Query, variant: ExperimentAssignment.Variant, _ connection: RedisConnection) throws -> ([Recommendation], Bool) {
        let keys = self.keys
        let user = try ServingRecsState.UserReads.read(connection, keys: keys, user: query.user,
                                                      session: query.category == nil ? query.session : nil, scoring: variant.scoring)
        var cacheKey: String?
        if let cache {
            // Each part with its length: ids may hold any character, so no separator is safe.
            let parts = [keys.prefix, variant.name, query.user, query.session ?? "", query.item ?? "", query.category ?? "", String(query.k),
                         query.exclude.sorted().joined(separator: ","), user.cartVersion ?? "0"]
            cacheKey = parts.map { "\($0.utf8.count):\($0)" }.joined()
            if let hit = cache.get(cacheKey!, at: .now) {
                let seen = Set(user.recent)
                return (hit.filter { !seen.contains($0.item) }, true)
            }
        }
        let state = ServingRecsState(redis: RedisRecsState(connection), keys: keys, user: user, items: items, factors: model.current(for: keys))
        let answer = try Recommender(state: state, scoring: variant.scoring, keys: keys)
            .recommend(user: query.user, k: query.k, category: query.category ?? user.sessionCategory, context: query.item,
                       exclude: Set(query.exclude), rules: config.rules)
        if let cache, let cacheKey { cache.put(cacheKey, answer, at: .now) }
        return (answer, false)
    }

    /// Popular items from the snapshot, through the same rules (empty before the first
    /// snapshot was read).
    private func fallbackItems(k: Int, category: String? = nil, trending: Bool = false, excluding: Set<String>) -> [Recommendation] {
        let state = snapshot.state
        return (try? Recommender(state: state, keys: state.contents.keys).popular(k: k, category: category, trending: trending, excluding: excluding,
                                                                            rules: config.rules, onlyCategory: category != nil)) ?? []
    }

    // MARK: similar and popular

    /// A recommender over item-level state only (no user's keys).
    private func shared(_ connection: RedisConnection) -> Recommender {
        let keys = self.keys
        return Recommender(state: ServingRecsState(redis: RedisRecsState(connection), keys: keys, items: items), keys: keys)
    }

    /// An item's co-view neighbours, or why Redis could not give them (503).
    func similar(item: String, k: Int, cosine: Bool) async -> Result<[Recommendation], FallbackReason> {
        await guarded { [self] connection in
            try shared(connection).similar(item: item, k: k, cosine: cosine, rules: config.rules)
        }
    }

    /// Popular or trending items (of a category); from the snapshot when Redis cannot answer.
    func popular(k: Int, category: String?, trending: Bool) async -> (items: [Recommendation], fallback: FallbackReason?) {
        switch await guarded({ [self] connection in
            try shared(connection).popular(k: k, category: category, trending: trending, rules: config.rules, onlyCategory: true)
        }) {
        case .success(let items): return (items, nil)
        case .failure(let reason):
            metrics.fallback(reason)
            return (fallbackItems(k: k, category: category, trending: trending, excluding: []), reason)
        }
    }

    /// A session's features hash (`session:{id}:features`), field by field; empty for an
    /// unknown session.
    func sessionFeatures(_ session: String) async -> Result<[(String, String)], FallbackReason> {
        await guarded { [keys] connection in
            let reply = try connection.send("HGETALL", keys.session(session))
            if let error = reply.firstError { throw RedisError("redis: \(error)") }
            let flat = reply.strings
            return stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }.sorted { $0.0 < $1.0 }
        }
    }

    // MARK: budget and breaker

    /// Runs `body` on the pool within the budget, unless the breaker holds calls back. The
    /// breaker hears how each call ended, also one that ended after the budget.
    private func guarded<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async -> Result<T, FallbackReason> {
        guard breaker.withLock({ $0.allows(at: .now) }) else {
            return .failure(.circuitOpen)
        }
        let outcome = await redis.run(within: .milliseconds(config.budgetMs)) { [self] connection in
            do {
                let value = try body(connection)
                if breaker.withLock({ b in defer { b.succeeded() }; return b.isOpen }) { logger.notice("Redis answers again: the circuit breaker closed") }
                return value
            } catch {
                failed(error)
                throw error
            }
        }
        switch outcome {
        case .value(let value): return .success(value)
        case .late:
            return .failure(.budget)
        case .failed(let error):
            // Refused before the call ran: only an unreachable Redis counts against it, not a full pool.
            if let busy = error as? RedisPool.Busy {
                if busy.unreachable { failed(error) } else { metrics.redisErrors.add(1, ordering: .relaxed) }
            }
            return .failure(.redisError)
        }
    }

    private func failed(_ error: any Error) {
        metrics.redisErrors.add(1, ordering: .relaxed)
        let opened: CircuitBreaker? = breaker.withLock { b in
            let before = b.openings
            b.failed(at: .now)
            return b.openings > before ? b : nil
        }
        if let opened {
            logger.warning("Redis failed \(opened.threshold) calls in a row (\(error)): the circuit breaker opened; answering popular items from the snapshot, trying Redis again after \(opened.openFor)")
        }
    }
}
