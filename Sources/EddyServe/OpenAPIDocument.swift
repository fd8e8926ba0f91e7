import HTTPTypes

/// The OpenAPI 3.0 document of the routes this serve answers (`GET /openapi.json`), built
/// from its configuration — the routes switched on, the largest k, whether API keys are
/// needed — so it cannot describe a server other than the one answering.
/// `OpenAPIIntegrationTests` keeps it true: every route is in it and nothing else, and
/// schemathesis checks every answer against it.
enum OpenAPIDocument {
    /// What ingest accepts, from the topology's source (`EventValidator`).
    struct EventShape: Sendable {
        var required: [String]
        var numeric: [String]
        var timestamp: String
        var timestampRequired: Bool
        var maxBatchEvents: Int
    }

    struct Routes {
        /// nil: no ingest routes.
        var ingest: EventShape?
        /// The source key field, when `/v1/users/{id}/features` is served.
        var userKeyField: String?
        var recommendations: Bool
        var maxK: Int
        var defaultK: Int
        var apiKeys: Bool
    }

    /// The paths of the document for `routes`, as the router names them.
    static func paths(_ routes: Routes) -> [String] { pathItems(routes).map(\.0) }

    /// Each path's methods.
    static func methods(_ routes: Routes) -> [String: [HTTPRequest.Method]] {
        Dictionary(uniqueKeysWithValues: pathItems(routes).map { path, item in
            guard case .object(let operations) = item else { return (path, []) }
            return (path, operations.compactMap { HTTPRequest.Method($0.0.uppercased()) })
        })
    }

    static func document(_ routes: Routes) -> JSONValue {
        var components: [(String, JSONValue)] = [("schemas", .object(schemas(routes)))]
        if routes.apiKeys {
            components.append(("securitySchemes", .object([
                ("bearer", .object([("type", "http"), ("scheme", "bearer")])),
                ("apiKey", .object([("type", "apiKey"), ("in", "header"), ("name", "X-API-Key")])),
            ])))
        }
        return .object([
            ("openapi", "3.0.3"),
            ("info", .object([("title", "Eddy serve"), ("version", "1"),
                              ("description", "Event ingest and recommendations over the state Eddy's topologies keep in Redis.")])),
            ("servers", .array([.object([("url", "/")])])),
            ("paths", .object(pathItems(routes).map { ($0.0, $0.1) })),
            ("components", .object(components)),
        ])
    }

    // MARK: paths

    private static func pathItems(_ r: Routes) -> [(String, JSONValue)] {
        var items: [(String, JSONValue)] = [
            ("/healthz", get("The process is up.", responses: [("200", json("Up", ref("Status")))])),
            ("/readyz", get("Ready: the broker acknowledges (ingest), Redis answers PING within 500 ms, and the model's item factors have been read once (when a variant weighs the model).",
                            responses: [("200", json("Ready", ref("Status"))), ("503", json("Not ready", ref("Error")))])),
            ("/metrics", get("Prometheus metrics.", responses: [("200", .object([("description", "Metrics in the Prometheus text format"),
                                                                               ("content", .object([("text/plain", .object([("schema", .object([("type", "string")]))]))]))]))])),
            ("/openapi.json", get("This document.", responses: [("200", json("The OpenAPI document", .object([("type", "object")])))])),
        ]
        if let shape = r.ingest {
            items.append(("/v1/events", post("One event, validated against the topology's source and published keyed by its key field; answered after the broker's acknowledgement.",
                                             body: [("application/json", ref("Event"))], r)))
            // The event limit is in the text, not maxItems: past it the answer is 413 (too
            // large), where a schema violation would be a 400.
            items.append(("/v1/events:batch", post("A JSON array of events or NDJSON, at most \(shape.maxBatchEvents) events (else 413); per-event results.",
                                                   body: [("application/json", .object([("type", "array"), ("minItems", 1), ("items", ref("Event"))])),
                                                          ("application/x-ndjson", .object([("type", "string"), ("minLength", 2)]))], r)))
        }
        if let key = r.userKeyField {
            items.append(("/v1/users/{id}/features", get("What the topology keeps in Redis for one user, by node.", parameters: [pathID("The user id")],
                                                        responses: [("200", json("The user's features", userFeatures(key))), bad, unavailable], r)))
        }
        if r.recommendations {
            let k = integer("k", "How many items (default \(r.defaultK)).", minimum: 1, maximum: r.maxK)
            items.append(("/v1/recommendations", get("The user's top k: co-view of their recent items, their categories' and global popularity; seen and excluded items left out; business rules and a per-category cap; a reason per item. Cold users get popular items. Redis slow or failing: popular items with fallback true.",
                                                    parameters: [string("user_id", "The user id.", required: true), k,
                                                                 string("session_id", "Their session (user:start): a cold user gets its top category's popular items."),
                                                                 string("item_id", "An item on screen: what goes with it for this user."),
                                                                 string("category", "A cold user's category."),
                                                                 string("exclude", "Items to leave out, comma-separated.", minLength: 0, maxLength: RecommendationRoutes.maxExcludeLength)],
                                                    responses: [("200", json("Recommendations", ref("Recommendations"))), bad], r)))
            items.append(("/v1/items/{id}/similar", get("The item's co-view neighbours, best first.",
                                                       parameters: [pathID("The item id"), k, .object([("name", "cosine"), ("in", "query"), ("description", "Cosine-normalized instead of raw co-view counts."),
                                                                                                         ("schema", .object([("type", "boolean")]))])],
                                                       responses: [("200", json("Neighbours", ref("Similar"))), bad, unavailable], r)))
            items.append(("/v1/popular", get("Popular (decayed, half-life 1 h) or trending items, of a category when given (trending: among the 1000 most trending items, by the catalog's category).",
                                            parameters: [k, string("category", "Only items of this category."),
                                                         .object([("name", "window"), ("in", "query"), ("schema", .object([("type", "string"), ("enum", .array(["popular", "trending"]))]))])],
                                            responses: [("200", json("Popular items", ref("Popular"))), bad], r)))
            items.append(("/", get("The live page: popular and trending items, a user's recommendations, an item's co-views, the pipelines' throughput and lag.",
                                   responses: [("200", .object([("description", "HTML"), ("content", .object([("text/html", .object([("schema", text)]))]))]))])))
            items.append(("/v1/pipeline", get("The eddy run processes of serve.pipeline_metrics: records processed, their rate, the consumer lag.",
                                             responses: [("200", json("Each pipeline as last read", ref("Pipelines")))], r)))
            items.append(("/v1/sessions/{id}/features", get("A session's features as the session node keeps them.", parameters: [pathID("The session id (user:start)")],
                                                           responses: [("200", json("The session's features", ref("SessionFeatures"))), bad, unavailable], r)))
        }
        return items
    }

    private static let bad: (String, JSONValue) = ("400", json("A parameter is missing or malformed; `parameter` names it", ref("Error")))
    private static let unavailable: (String, JSONValue) = ("503", json("Redis cannot answer now", ref("Error")))

    private static func get(_ summary: String, parameters: [JSONValue] = [], responses: [(String, JSONValue)], _ r: Routes? = nil) -> JSONValue {
        .object([("get", operation(summary, parameters: parameters, responses: responses, secured: r?.apiKeys == true))])
    }

    private static func post(_ summary: String, body: [(String, JSONValue)], _ r: Routes) -> JSONValue {
        var op = operation(summary, parameters: [], responses: [
            ("202", json("Accepted: every event counted in accepted is on the broker", ref("IngestAccepted"))),
            ("400", json("No valid event: each rejected one with its reason", ref("IngestRefused"))),
            ("413", json("The body, the batch or the burst is over its limit", ref("Error"))),
            ("429", json("Over the client's rate limit; Retry-After says when to retry", ref("Error"))),
            ("503", json("The broker did not acknowledge in time; failed lists the events to send again", ref("IngestRefused"))),
        ], secured: r.apiKeys)
        if case .object(var members) = op {
            members.insert(("requestBody", .object([("required", true), ("content", .object(body.map { ($0.0, .object([("schema", $0.1)])) }))])), at: 1)
            op = .object(members)
        }
        return .object([("post", op)])
    }

    private static func operation(_ summary: String, parameters: [JSONValue], responses: [(String, JSONValue)], secured: Bool) -> JSONValue {
        var all = responses
        if secured { all.append(("401", json("An API key is required (Authorization: Bearer KEY or X-API-Key)", ref("Error")))) }
        var members: [(String, JSONValue)] = [("summary", .string(summary))]
        if !parameters.isEmpty { members.append(("parameters", .array(parameters))) }
        members.append(("responses", .object(all)))
        if secured { members.append(("security", .array([.object([("bearer", .array([]))]), .object([("apiKey", .array([]))])]))) }
        return .object(members)
    }

    private static func json(_ description: String, _ schema: JSONValue) -> JSONValue {
        .object([("description", .string(description)), ("content", .object([("application/json", .object([("schema", schema)]))]))])
    }

    private static func ref(_ name: String) -> JSONValue { .object([("$ref", .string("#/components/schemas/\(name)"))]) }

    private static func string(_ name: String, _ description: String, required: Bool = false, minLength: Int = 1,
                               maxLength: Int = RecommendationRoutes.maxIDLength) -> JSONValue {
        .object([("name", .string(name)), ("in", "query"), ("required", .bool(required)), ("description", .string(description)),
                 ("schema", .object([("type", "string"), ("minLength", .int(minLength)), ("maxLength", .int(maxLength))]))])
    }

    private static func integer(_ name: String, _ description: String, minimum: Int, maximum: Int) -> JSONValue {
        .object([("name", .string(name)), ("in", "query"), ("description", .string(description)),
                 ("schema", .object([("type", "integer"), ("minimum", .int(minimum)), ("maximum", .int(maximum))]))])
    }

    private static func pathID(_ description: String) -> JSONValue {
        .object([("name", "id"), ("in", "path"), ("required", true), ("description", .string(description + ", percent-encoded.")),
                 ("schema", .object([("type", "string"), ("minLength", 1), ("maxLength", .int(RecommendationRoutes.maxIDLength))]))])
    }

    // MARK: schemas

    private static func object(_ properties: [(String, JSONValue)], required: [String]) -> JSONValue {
        .object([("type", "object"), ("required", .array(required.map { .string($0) })), ("properties", .object(properties))])
    }

    private static let text: JSONValue = .object([("type", "string")])
    private static let boolean: JSONValue = .object([("type", "boolean")])
    private static let fallbackReason: JSONValue = .object([("type", "string"), ("enum", .array(["budget", "redis_error", "circuit_open"]))])
    private static let items: JSONValue = .object([("type", "array"), ("items", ref("Item"))])
    private static let anyObject: JSONValue = .object([("type", "object")])
    private static func nullable(_ type: String) -> JSONValue { .object([("type", .string(type)), ("nullable", true)]) }

    /// A valid event: required fields non-empty strings, numbers or booleans; the timestamp
    /// epoch milliseconds, any number from 0 to the end of year 9999 (required unless serve
    /// adds it); numeric fields numbers.
    private static func event(_ shape: EventShape) -> JSONValue {
        let scalar: JSONValue = .object([("oneOf", .array([.object([("type", "string"), ("minLength", 1)]), .object([("type", "number")]), .object([("type", "boolean")])]))])
        var properties = shape.required.map { ($0, scalar) }
        properties.append((shape.timestamp, .object([("type", "number"), ("minimum", 0), ("maximum", .int(253_402_300_799_999))])))
        for name in shape.numeric where !shape.required.contains(name) { properties.append((name, .object([("type", "number"), ("nullable", true)]))) }
        return object(properties, required: shape.required + (shape.timestampRequired ? [shape.timestamp] : []))
    }

    private static func userFeatures(_ key: String) -> JSONValue {
        object([(key, text), ("features", anyObject)], required: [key, "features"])
    }

    private static func schemas(_ r: Routes) -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = [
            ("Error", object([("error", object([("message", text)], required: ["message"])), ("parameter", text), ("status", text)], required: ["error"])),
            ("Status", object([("status", text), ("namespace", text)], required: ["status"])),
        ]
        if let shape = r.ingest {
            let perEvent: JSONValue = .object([("type", "array"), ("items", object([("index", .object([("type", "integer")])), ("reason", text), ("message", text),
                                                                                ("possibly_written", boolean)], required: ["index", "reason"]))])
            let properties: [(String, JSONValue)] = [("accepted", .object([("type", "integer"), ("minimum", 0)])), ("rejected", perEvent), ("failed", perEvent),
                                                     ("error", object([("message", text)], required: ["message"]))]
            out.append(("IngestAccepted", object(properties, required: ["accepted"])))
            out.append(("IngestRefused", object(properties, required: ["error"])))
            out.append(("Event", event(shape)))
        }
        if r.recommendations {
            out += [
                ("Item", object([("item", text), ("score", .object([("type", "number")])), ("reason", text)], required: ["item", "score", "reason"])),
                ("Recommendations", object([("user_id", text), ("item_id", text), ("experiment", nullable("string")),
                                            ("variant", text), ("fallback", boolean), ("fallback_reason", fallbackReason), ("cached", boolean), ("items", items)],
                                           required: ["user_id", "experiment", "variant", "fallback", "cached", "items"])),
                ("Similar", object([("item_id", text), ("cosine", boolean), ("items", items)], required: ["item_id", "cosine", "items"])),
                ("Popular", object([("window", .object([("type", "string"), ("enum", .array(["popular", "trending"]))])), ("category", text),
                                    ("fallback", boolean), ("fallback_reason", fallbackReason), ("items", items)], required: ["window", "fallback", "items"])),
                ("SessionFeatures", object([("session_id", text), ("features", anyObject)], required: ["session_id", "features"])),
                ("Pipelines", object([("pipelines", .object([("type", "array"), ("items", object([
                    ("url", text), ("up", boolean), ("application", nullable("string")), ("records_processed", nullable("integer")),
                    ("records_per_second", nullable("number")), ("lag", nullable("integer")), ("error", nullable("string")),
                ], required: ["url", "up", "application", "records_processed", "records_per_second", "lag", "error"]))]))], required: ["pipelines"])),
            ]
        }
        return out
    }
}
