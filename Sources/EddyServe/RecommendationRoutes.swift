import EddyRecs
import Hummingbird
import HummingbirdCore

/// The query routes over the recommendation state (`RecommendationService`):
///
/// - `GET /v1/recommendations?user_id=&k=[&session_id=][&item_id=][&category=][&exclude=a,b]`:
///   the user's top k (seen and excluded items left out, business rules and the category
///   cap applied, a reason per item); a cold user gets popular items (of the session's top
///   category, or `category`); with `item_id`, what goes with that item for this user.
///   Always 200: a slow or failing Redis gives popular items with `"fallback": true`.
/// - `GET /v1/items/{id}/similar?k=[&cosine=true]`: the item's co-view neighbours; 503 when
///   Redis cannot answer.
/// - `GET /v1/popular?k=[&category=][&window=trending]`: popular (or trending) items, of a
///   category when given; from the snapshot with `"fallback": true` when Redis cannot answer.
/// - `GET /v1/sessions/{id}/features`: a session's features (`user:start`, as the session
///   node names them); empty for an unknown session, 503 when Redis cannot answer.
///
/// A missing or malformed parameter is a 400 naming it. Unknown users and items are not
/// errors: an unknown item has no neighbours (`items: []`), an unknown user is cold.
struct RecommendationRoutes {
    let service: RecommendationService
    /// Ids are at most this many characters (Unicode scalars, as JSON Schema's maxLength
    /// counts them), in the path or the query.
    static let maxIDLength = 512
    /// The exclude list's longest text: a bound on the work a request can ask for.
    static let maxExcludeLength = 4096

    /// A path segment's id, percent-decoded; nil when empty or too long.
    static func pathID(_ raw: String?) -> String? {
        guard let raw, let id = raw.removingPercentEncoding, !id.isEmpty, id.unicodeScalars.count <= maxIDLength else { return nil }
        return id
    }

    func add(to router: Router<ServeContext>) {
        addSessionFeatures(to: router)
        let config = service.config
        router.get("/v1/recommendations") { request, _ in
            let parameters = Parameters(request.uri.queryParameters)
            let query: RecommendationService.Query
            do {
                query = RecommendationService.Query(
                    user: try parameters.id("user_id", required: true)!, k: try parameters.k(default: config.defaultK, max: config.maxK),
                    session: try parameters.id("session_id"), item: try parameters.id("item_id"), category: try parameters.id("category"),
                    exclude: try parameters.list("exclude", maxLength: Self.maxExcludeLength))
            } catch let error as Parameters.Invalid {
                return error.response
            }
            let answer = await service.recommend(query)
            var members: [(String, JSONValue)] = [("user_id", .string(query.user))]
            if let item = query.item { members.append(("item_id", .string(item))) }
            members += [("experiment", service.assignment.experiment.map(JSONValue.string) ?? .null), ("variant", .string(answer.variant)),
                        ("fallback", .bool(answer.fallback != nil))]
            if let reason = answer.fallback { members.append(("fallback_reason", .string(reason.rawValue))) }
            members += [("cached", .bool(answer.cached)), ("items", Self.json(answer.items))]
            return Responses.json(.ok, .object(members))
        }
        router.get("/v1/items/:id/similar") { request, context in
            let parameters = Parameters(request.uri.queryParameters)
            let item: String, k: Int, cosine: Bool
            do {
                guard let id = Self.pathID(context.parameters.get("id")) else {
                    throw Parameters.Invalid(parameter: "id", message: "the item id must be 1 to \(Self.maxIDLength) characters, percent-encoded in the path")
                }
                (item, k, cosine) = (id, try parameters.k(default: config.defaultK, max: config.maxK), try parameters.bool("cosine"))
            } catch let error as Parameters.Invalid {
                return error.response
            }
            switch await service.similar(item: item, k: k, cosine: cosine) {
            case .success(let items):
                return Responses.json(.ok, .object([("item_id", .string(item)), ("cosine", .bool(cosine)), ("items", Self.json(items))]))
            case .failure(let reason):
                return Self.unavailable(reason)
            }
        }
        router.get("/v1/popular") { request, _ in
            let parameters = Parameters(request.uri.queryParameters)
            let k: Int, category: String?, trending: Bool
            do {
                k = try parameters.k(default: config.defaultK, max: config.maxK)
                category = try parameters.id("category")
                switch parameters.values["window"] {
                case nil, "popular": trending = false
                case "trending": trending = true
                case let other?: throw Parameters.Invalid(parameter: "window", message: "window must be popular or trending, got '\(other)'")
                }
            } catch let error as Parameters.Invalid {
                return error.response
            }
            let answer = await service.popular(k: k, category: category, trending: trending)
            var members: [(String, JSONValue)] = [("window", .string(trending ? "trending" : "popular"))]
            if let category { members.append(("category", .string(category))) }
            members.append(("fallback", .bool(answer.fallback != nil)))
            if let reason = answer.fallback { members.append(("fallback_reason", .string(reason.rawValue))) }
            members.append(("items", Self.json(answer.items)))
            return Responses.json(.ok, .object(members))
        }
    }

    private func addSessionFeatures(to router: Router<ServeContext>) {
        router.get("/v1/sessions/:id/features") { _, context in
            guard let id = Self.pathID(context.parameters.get("id")) else {
                return Responses.error(.badRequest, "the session id must be 1 to \(Self.maxIDLength) characters, percent-encoded in the path", extra: [("parameter", "id")])
            }
            switch await service.sessionFeatures(id) {
            case .success(let fields):
                return Responses.json(.ok, .object([("session_id", .string(id)), ("features", .object(fields.map { ($0.0, JSONValue.scalar($0.1)) }))]))
            case .failure(let reason):
                return Self.unavailable(reason)
            }
        }
    }

    /// 503 for the routes without a fallback.
    static func unavailable(_ reason: RecommendationService.FallbackReason) -> Response {
        Responses.error(.serviceUnavailable, "Redis cannot answer now (\(reason.rawValue)); retry shortly", headers: [.retryAfter: "1"])
    }

    static func json(_ items: [Recommendation]) -> JSONValue {
        .array(items.map { .object([("item", .string($0.item)), ("score", .double($0.score)), ("reason", .string($0.reason))]) })
    }
}

/// A request's query parameters, checked one by one; the error names the parameter.
struct Parameters {
    struct Invalid: Error {
        let parameter: String
        let message: String

        /// 400 naming the parameter.
        var response: Response { Responses.error(.badRequest, message, extra: [("parameter", .string(parameter))]) }
    }

    /// The first value of each name.
    let values: [String: String]

    init(_ query: FlatDictionary<Substring, Substring>) {
        var values: [String: String] = [:]
        for (name, value) in query where values[String(name)] == nil { values[String(name)] = String(value) }
        self.values = values
    }

    func id(_ name: String, required: Bool = false) throws -> String? {
        guard let value = values[name] else {
            if required { throw Invalid(parameter: name, message: "\(name) is required") }
            return nil
        }
        guard !value.isEmpty, value.unicodeScalars.count <= RecommendationRoutes.maxIDLength else {
            throw Invalid(parameter: name, message: "\(name) must be 1 to \(RecommendationRoutes.maxIDLength) characters, got \(value.unicodeScalars.count)")
        }
        return value
    }

    func k(default fallback: Int, max: Int) throws -> Int {
        guard let text = values["k"] else { return fallback }
        guard let k = Int(text), (1...max).contains(k) else { throw Invalid(parameter: "k", message: "k must be an integer from 1 to \(max), got '\(text.prefix(40))'") }
        return k
    }

    func bool(_ name: String) throws -> Bool {
        switch values[name] {
        case nil, "false", "0": return false
        case "true", "1": return true
        case let other?: throw Invalid(parameter: name, message: "\(name) must be true or false, got '\(other.prefix(40))'")
        }
    }

    /// A comma-separated list of ids (empty entries are skipped; an empty list is none).
    func list(_ name: String, maxLength: Int) throws -> [String] {
        guard let value = values[name] else { return [] }
        guard value.unicodeScalars.count <= maxLength else {
            throw Invalid(parameter: name, message: "\(name) is \(value.unicodeScalars.count) characters, more than \(maxLength)")
        }
        return value.split(separator: ",").map(String.init)
    }
}
