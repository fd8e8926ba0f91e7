import EddyStreams
import Foundation
import Yams

/// Reads topology files (Topologies/*.yaml) into validated `Topology` values.
///
///     application: user-counts
///     namespace: v2                  # optional: Redis keys under v2: (a replay beside the live state)
///     source: {topic: clicks, key: user_id, timestamp: ts}
///     nodes:
///       - name: per_user
///         aggregate: {group_by: [user_id], sum: [price]}
///         to_redis: {type: hash, key: "user:{user_id}:counts", ttl: 24h}
///       - name: recently_viewed
///         recent: {group_by: [user_id], field: item_id, size: 20}
///       - name: popularity
///         decay: {group_by: [item_id], half_life: 1h, weights: {field: event_type, values: {view: 1, click: 3}}}
///       - name: sessions
///         session: {group_by: [user_id], gap: 30m, grace: 5m, closed_ttl: 1h}
///         to_redis: {type: hash, key: "session:{session_id}:features"}
///       - name: with_category
///         join: {table: catalog, on: item_id, fields: [category], missing: drop}
///       - name: item_pairs
///         pairs: {group_by: [user_id], item: item_id, last: 20, within: 30m}
///     tables:
///       catalog: {topic: items}
public enum TopologyFile {
    public static func load(path: String) throws -> Topology {
        try parse(try readConfigFile(path), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Topology {
        let (topology, root) = try decode(text, file: file)
        do {
            try topology.validate()
        } catch let error as TopologyError {
            throw root.deepest(error.path).error(error.message).withField(error.field)
        }
        return topology
    }

    /// The file's topology as written, not yet validated (`parse` validates it), and the
    /// root of the YAML.
    static func decode(_ text: String, file: String) throws -> (Topology, YAMLField) {
        let root = try YAMLField.load(text, file: file)
        let top = try root.mapping(allowed: ["application", "namespace", "source", "nodes", "tables"])
        guard let app = top["application"] else { throw root.error("missing field 'application'") }
        guard let sourceField = top["source"] else { throw root.error("missing field 'source'") }
        let topology = Topology(application: try app.string(), source: try source(sourceField),
                                nodes: try top["nodes"]?.sequence().map(node) ?? [], tables: try top["tables"].map(tables) ?? [])
        if let namespace = top["namespace"] { return (topology.inNamespace(try namespace.nonEmptyString()), root) }
        return (topology, root)
    }

    /// `{catalog: {topic: items}}`: global tables by name.
    private static func tables(_ field: YAMLField) throws -> [Topology.Table] {
        guard case .mapping(let mapping) = field.node else { throw field.error("expected a mapping of table name: {topic: ...}") }
        let names = Array(mapping.keys.compactMap { $0.scalar?.string })
        let entries = try field.mapping(allowed: names)
        return try names.map { name in
            let f = try entries[name]!.mapping(allowed: ["topic"])
            guard let topic = f["topic"] else { throw entries[name]!.error("missing field 'topic' (the table's topic)") }
            return Topology.Table(name: name, topic: try topic.nonEmptyString())
        }
    }

    private static func source(_ field: YAMLField) throws -> Topology.Source {
        let f = try field.mapping(allowed: ["topic", "format", "key", "timestamp", "required", "dead_letter_topic", "max_value_bytes"])
        if let format = f["format"], try format.string() != "json" {
            throw format.error("unsupported format '\(try format.string())' (supported: json)")
        }
        func required(_ name: String) throws -> String {
            guard let v = f[name] else { throw field.error("missing field '\(name)'") }
            return try v.string()
        }
        var source = Topology.Source(topic: try required("topic"), keyField: try required("key"),
                                     timestampField: try required("timestamp"),
                                     requiredFields: try f["required"]?.strings() ?? [],
                                     deadLetterTopic: try f["dead_letter_topic"]?.string())
        if let max = f["max_value_bytes"] { source.maxValueBytes = try max.positiveInt() }
        return source
    }

    private static func node(_ field: YAMLField) throws -> Topology.Node {
        let operations = ["filter", "project", "join", "aggregate", "recent", "decay", "session", "pairs", "model"]
        let f = try field.mapping(allowed: ["name", "input"] + operations + ["to_redis", "to_topic", "state_ttl"])
        guard let name = f["name"] else { throw field.error("missing field 'name'") }
        let given = operations.filter { f[$0] != nil }
        if given.count > 1 { throw f[given[1]]!.error("a node does one thing: it has both '\(given[0])' and '\(given[1])'") }
        let sinks = try f["to_redis"].map { sinkField -> [Topology.RedisSink] in
            if case .sequence = sinkField.node { return try sinkField.sequence().map(sink) }
            return [try sink(sinkField)]
        } ?? []
        let topicSinks = try f["to_topic"].map { sinkField -> [Topology.TopicSink] in
            if case .sequence = sinkField.node { return try sinkField.sequence().map(topicSink) }
            return [try topicSink(sinkField)]
        } ?? []
        let operation: Topology.Operation
        if let filter = f["filter"] {
            operation = try self.filter(filter)
        } else if let project = f["project"] {
            operation = .project(try project.strings())
        } else if let join = f["join"] {
            operation = .join(try self.join(join))
        } else if let aggregate = f["aggregate"] {
            let a = try aggregate.mapping(allowed: ["group_by", "sum", "weights"])
            guard let groupBy = a["group_by"] else { throw aggregate.error("missing field 'group_by'") }
            operation = .aggregate(groupBy: try groupBy.strings(), sum: try a["sum"]?.strings() ?? [],
                                   weights: try a["weights"].map(weights))
        } else if let recent = f["recent"] {
            let r = try recent.mapping(allowed: ["group_by", "field", "size", "distinct"])
            guard let groupBy = r["group_by"] else { throw recent.error("missing field 'group_by'") }
            guard let value = r["field"] else { throw recent.error("missing field 'field' (whose values to keep)") }
            guard let size = r["size"] else { throw recent.error("missing field 'size' (how many values to keep)") }
            operation = .recent(groupBy: try groupBy.strings(), field: try value.string(), size: try size.positiveInt(),
                                distinct: try r["distinct"]?.bool() ?? false)
        } else if let decay = f["decay"] {
            let d = try decay.mapping(allowed: ["group_by", "half_life", "weights", "trend_against", "top_k"])
            guard let groupBy = d["group_by"] else { throw decay.error("missing field 'group_by'") }
            guard let halfLife = d["half_life"] else { throw decay.error("missing field 'half_life' (e.g. 1h)") }
            guard let weightsField = d["weights"] else { throw decay.error("missing field 'weights' (what each record adds)") }
            operation = .decay(groupBy: try groupBy.strings(), weights: try weights(weightsField),
                               halfLifeMs: Int64(try halfLife.durationSeconds()) * 1000,
                               trendHalfLifeMs: try d["trend_against"].map { Int64(try $0.durationSeconds()) * 1000 },
                               topK: try d["top_k"].map(topK))
        } else if let session = f["session"] {
            operation = .session(try self.session(session))
        } else if let pairs = f["pairs"] {
            operation = .pairs(try self.pairs(pairs))
        } else if let model = f["model"] {
            operation = .model(try self.model(model))
        } else {
            guard !sinks.isEmpty || !topicSinks.isEmpty else {
                throw field.error("a node needs one of \(operations.joined(separator: ", ")) or a 'to_redis' or 'to_topic' sink")
            }
            operation = .passthrough
        }
        return Topology.Node(name: try name.string(), input: try f["input"]?.string(), operation: operation, sinks: sinks, topicSinks: topicSinks,
                             stateTTLMs: try f["state_ttl"]?.durationMilliseconds())
    }

    /// `{topic: closed-sessions, key: "{user_id}", fields: [session_id, events]}`
    private static func topicSink(_ field: YAMLField) throws -> Topology.TopicSink {
        let f = try field.mapping(allowed: ["topic", "key", "fields"])
        guard let topic = f["topic"] else { throw field.error("missing field 'topic' (the Kafka topic to write to)") }
        return Topology.TopicSink(topic: try topic.nonEmptyString(), key: try f["key"]?.string(), fields: try f["fields"]?.strings())
    }

    /// `{group_by: [user_id], gap: 30m, grace: 5m, closed_ttl: 1h}`, optionally naming the
    /// fields (`event_type`, `item`, `category`, `price`) and `cart_types`, `purchase_types`.
    private static func session(_ field: YAMLField) throws -> Topology.SessionWindow {
        let f = try field.mapping(allowed: ["group_by", "gap", "grace", "closed_ttl", "event_type", "item", "category", "price",
                                            "cart_types", "purchase_types"])
        guard let groupBy = f["group_by"] else { throw field.error("missing field 'group_by'") }
        guard let gap = f["gap"] else { throw field.error("missing field 'gap' (the inactivity that ends a session, e.g. 30m)") }
        var window = Topology.SessionWindow(groupBy: try groupBy.strings(), gapMs: try gap.durationMilliseconds())
        if let grace = f["grace"] { window.graceMs = try grace.durationMilliseconds(allowZero: true) }
        if let ttl = f["closed_ttl"] { window.closedTTLSeconds = try ttl.durationSeconds() }
        if let v = f["event_type"] { window.eventTypeField = try v.nonEmptyString() }
        if let v = f["item"] { window.itemField = try v.nonEmptyString() }
        if let v = f["category"] { window.categoryField = try v.nonEmptyString() }
        if let v = f["price"] { window.priceField = try v.nonEmptyString() }
        if let v = f["cart_types"] { window.cartTypes = try v.strings() }
        if let v = f["purchase_types"] { window.purchaseTypes = try v.strings() }
        return window
    }

    /// `{k: 50, every: 1d, grace: 1h}` (`every` and `grace` optional)
    private static func topK(_ field: YAMLField) throws -> Topology.TopK {
        let f = try field.mapping(allowed: ["k", "every", "grace"])
        guard let k = f["k"] else { throw field.error("missing field 'k' (how many neighbours to keep per item)") }
        var topK = Topology.TopK(k: try k.positiveInt(atMost: ConfigLimits.maxTopK))
        if let every = f["every"] { topK.everyMs = try every.durationMilliseconds() }
        if let grace = f["grace"] { topK.graceMs = try grace.durationMilliseconds(allowZero: true) }
        return topK
    }

    /// `{group_by: [user_id], item: item_id, other: other_item, last: 20, within: 30m}`
    private static func pairs(_ field: YAMLField) throws -> Topology.Pairs {
        let f = try field.mapping(allowed: ["group_by", "item", "other", "last", "within"])
        guard let groupBy = f["group_by"] else { throw field.error("missing field 'group_by' (whose items pair up, e.g. [user_id])") }
        var pairs = Topology.Pairs(groupBy: try groupBy.strings())
        if let v = f["item"] { pairs.itemField = try v.nonEmptyString() }
        if let v = f["other"] { pairs.otherField = try v.nonEmptyString() }
        if let v = f["last"] { pairs.last = try v.positiveInt() }
        if let v = f["within"] { pairs.withinMs = try v.durationMilliseconds() }
        return pairs
    }

    /// `{user: user_id, item: item_id, weights: {...}, factors: 32, regularization: 0.1, alpha: 0.3,
    /// missing_weight: 1, user_history: 100, item_history: 200, grace: 1m}` (all but `weights` optional)
    private static func model(_ field: YAMLField) throws -> Topology.MatrixFactorization {
        let f = try field.mapping(allowed: ["user", "item", "weights", "factors", "regularization", "alpha", "missing_weight", "user_history", "item_history", "grace"])
        guard let weightsField = f["weights"] else { throw field.error("missing field 'weights' (the confidence each event type adds)") }
        var model = Topology.MatrixFactorization(weights: try weights(weightsField))
        if let v = f["user"] { model.userField = try v.nonEmptyString() }
        if let v = f["item"] { model.itemField = try v.nonEmptyString() }
        if let v = f["factors"] { model.factors = try v.positiveInt(atMost: Topology.MatrixFactorization.maxFactors) }
        if let v = f["regularization"] { model.regularization = try v.number() }
        if let v = f["alpha"] { model.alpha = try v.number() }
        if let v = f["missing_weight"] { model.missingWeight = try v.number() }
        if let v = f["user_history"] { model.userHistory = try v.positiveInt(atMost: Topology.MatrixFactorization.maxHistory) }
        if let v = f["item_history"] { model.itemHistory = try v.positiveInt(atMost: Topology.MatrixFactorization.maxHistory) }
        if let v = f["grace"] { model.graceMs = try v.durationMilliseconds(allowZero: true) }
        return model
    }

    /// `{table: catalog, on: item_id, fields: [category, price], missing: drop}`
    private static func join(_ field: YAMLField) throws -> Topology.Join {
        let f = try field.mapping(allowed: ["table", "on", "fields", "missing"])
        guard let table = f["table"] else { throw field.error("missing field 'table' (a name under 'tables:')") }
        guard let on = f["on"] else { throw field.error("missing field 'on' (the field holding the row's key)") }
        guard let fields = f["fields"] else { throw field.error("missing field 'fields' (which columns of the row to add)") }
        var join = Topology.Join(table: try table.nonEmptyString(), on: try on.nonEmptyString(), fields: try fields.strings())
        if let missing = f["missing"] {
            let text = try missing.string()
            guard let value = Topology.Join.MissingRow(rawValue: text) else {
                throw missing.error("unknown value '\(text)' (expected \(Topology.Join.MissingRow.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            join.missing = value
        }
        return join
    }

    /// `{field: event_type, values: {view: 1, click: 3}}`
    private static func weights(_ field: YAMLField) throws -> Topology.Weights {
        let f = try field.mapping(allowed: ["field", "values"])
        guard let name = f["field"] else { throw field.error("missing field 'field' (whose value picks the weight)") }
        guard let values = f["values"] else { throw field.error("missing field 'values' (a weight per value)") }
        guard case .mapping(let mapping) = values.node else { throw values.error("expected a mapping of value: weight") }
        let weights = try values.mapping(allowed: mapping.keys.compactMap { $0.scalar?.string })
        return Topology.Weights(field: try name.string(), values: try mapping.keys.compactMap { $0.scalar?.string }.map {
            Topology.Weight($0, try weights[$0]!.number())
        })
    }

    private static func filter(_ field: YAMLField) throws -> Topology.Operation {
        let conditions = ["equals", "in", "not_in", "exists"]
        let f = try field.mapping(allowed: ["field"] + conditions)
        guard let name = f["field"] else { throw field.error("missing field 'field' (which field to test)") }
        let given = conditions.filter { f[$0] != nil }
        guard given.count == 1, let which = given.first, let value = f[which] else {
            throw field.error("give exactly one condition of: \(conditions.joined(separator: ", "))")
        }
        let condition: Topology.Condition
        switch which {
        case "equals": condition = .equals(try value.string())
        case "in": condition = .oneOf(try value.strings())
        case "not_in": condition = .noneOf(try value.strings())
        default:
            guard try value.bool() else { throw value.error("only 'exists: true' is supported (use not_in for exclusions)") }
            condition = .exists
        }
        return .filter(field: try name.string(), condition)
    }

    private static func sink(_ field: YAMLField) throws -> Topology.RedisSink {
        let f = try field.mapping(allowed: ["type", "key", "field", "member", "value", "score", "ttl"])
        guard let typeField = f["type"] else { throw field.error("missing field 'type' (hash, zset, string or list)") }
        let typeName = try typeField.string()
        guard let kind = Topology.RedisSink.Kind(rawValue: typeName) else {
            throw typeField.error("unknown sink type '\(typeName)' (expected hash, zset, string or list)")
        }
        guard let key = f["key"] else { throw field.error("missing field 'key' (the Redis key template)") }
        // zset sinks read better with member/score; they are the same slots as field/value.
        let fieldTemplate = try (f["field"] ?? f["member"])?.string()
        let value = try (f["value"] ?? f["score"])?.string()
        return Topology.RedisSink(kind: kind, key: try key.string(), field: fieldTemplate, value: value,
                                  ttlSeconds: try f["ttl"]?.durationSeconds())
    }
}

extension ConfigError {
    func withField(_ field: String) -> ConfigError {
        ConfigError(file: file, line: line, column: column, field: field, message: message)
    }
}
