/// Builds a `Topology` in Swift, in the style of Kafka Streams' StreamsBuilder:
///
///     let builder = StreamsBuilder(application: "user-counts")
///     builder.stream(topic: "clicks", key: "user_id", timestamp: "ts")
///         .filter("valid", field: "event_type", .oneOf(["view", "click", "cart", "purchase"]))
///         .aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
///         .toRedis(.init(kind: .hash, key: "user:{user_id}"))
///     let topology = try builder.build()
public final class StreamsBuilder {
    private let application: String
    private var source: Topology.Source?
    private var nodes: [Topology.Node] = []
    private var tables: [Topology.Table] = []

    public init(application: String) {
        self.application = application
    }

    @discardableResult
    public func stream(topic: String, key: String, timestamp: String, required: [String] = [],
                       deadLetterTopic: String? = nil, maxValueBytes: Int = 256 * 1024) -> KStream {
        source = Topology.Source(topic: topic, keyField: key, timestampField: timestamp,
                                 requiredFields: required, deadLetterTopic: deadLetterTopic, maxValueBytes: maxValueBytes)
        return KStream(builder: self, name: nil)
    }

    /// Declares a global table read from `topic` (Kafka Streams' `globalTable`); `join` names it.
    public func globalTable(_ name: String, topic: String) {
        tables.append(Topology.Table(name: name, topic: topic))
    }

    /// Validates the topology (as a config file would be) and returns it.
    public func build() throws -> Topology {
        let topology = try unvalidated()
        _ = try TopologyCompiler.compile(topology)
        return topology
    }

    /// The topology as built so far, not yet validated (`build` validates it).
    func unvalidated() throws -> Topology {
        guard let source else { throw TopologyError([.key("source")], "no source stream: call stream(topic:...) first") }
        return Topology(application: application, source: source, nodes: nodes, tables: tables)
    }

    func add(_ node: Topology.Node) -> KStream {
        nodes.append(node)
        return KStream(builder: self, name: node.name)
    }

    /// `name` is a KTable's node: the builder made it.
    func setStateTTL(_ ms: Int64, of name: String?) {
        guard let i = nodes.firstIndex(where: { $0.name == name }) else { preconditionFailure("no node named \(name ?? "nil")") }
        nodes[i].stateTTLMs = ms
    }

    func addTopicSink(_ sink: Topology.TopicSink, to name: String?) {
        if let name, let i = nodes.firstIndex(where: { $0.name == name }) {
            nodes[i].topicSinks.append(sink)
        } else {
            nodes.append(Topology.Node(name: "sink\(nodes.count)", input: name, operation: .passthrough, topicSinks: [sink]))
        }
    }

    func addSink(_ sink: Topology.RedisSink, to name: String?) {
        if let name, let i = nodes.firstIndex(where: { $0.name == name }) {
            nodes[i].sinks.append(sink)
        } else {
            let node = Topology.Node(name: "sink\(nodes.count)", input: name, operation: .passthrough, sinks: [sink])
            nodes.append(node)
        }
    }
}

/// A stream of records in a `StreamsBuilder` (a node of the topology being built).
public struct KStream {
    let builder: StreamsBuilder
    let name: String?

    public func filter(_ name: String, field: String, _ condition: Topology.Condition) -> KStream {
        builder.add(.init(name: name, input: self.name, operation: .filter(field: field, condition)))
    }

    public func project(_ name: String, fields: [String]) -> KStream {
        builder.add(.init(name: name, input: self.name, operation: .project(fields)))
    }

    /// Adds `fields` of the `table` row whose key is the record's `on` field (see `Topology.Join`).
    public func join(_ name: String, table: String, on: String, fields: [String], missing: Topology.Join.MissingRow = .drop) -> KStream {
        builder.add(.init(name: name, input: self.name, operation: .join(Topology.Join(table: table, on: on, fields: fields, missing: missing))))
    }

    public func aggregate(_ name: String, groupBy: [String], sum: [String] = [], weights: Topology.Weights? = nil) -> KTable {
        KTable(stream: builder.add(.init(name: name, input: self.name, operation: .aggregate(groupBy: groupBy, sum: sum, weights: weights))))
    }

    /// The `size` most recent values of `field` per group (outputs `count`, `recent`).
    public func recent(_ name: String, groupBy: [String], field: String, size: Int, distinct: Bool = false) -> KTable {
        KTable(stream: builder.add(.init(name: name, input: self.name, operation: .recent(groupBy: groupBy, field: field, size: size, distinct: distinct))))
    }

    /// An exponentially decayed weight sum per group on event time (outputs `count`, `score`,
    /// `last_time`, `rank`); with `topK`, only the best `k` values of the last group field
    /// per value of the others (`Topology.TopK`).
    public func decay(_ name: String, groupBy: [String], weights: Topology.Weights, halfLife: Duration, trendAgainst: Duration? = nil,
                      topK: Topology.TopK? = nil) -> KTable {
        KTable(stream: builder.add(.init(name: name, input: self.name, operation: .decay(groupBy: groupBy, weights: weights, halfLifeMs: milliseconds(halfLife),
                                                                                           trendHalfLifeMs: trendAgainst.map(milliseconds), topK: topK))))
    }

    /// Pairs each record's item with the group's last `last` distinct items (seen within
    /// `within` of event time, if given), both ways, as records with `other` set (see
    /// `Topology.Pairs`): feed them to a `decay` grouped by `[item, other]` for co-view.
    public func pairs(_ name: String, groupBy: [String], item: String = "item_id", other: String = "other_item",
                      last: Int = 20, within: Duration? = nil) -> KStream {
        builder.add(.init(name: name, input: self.name, operation: .pairs(
            Topology.Pairs(groupBy: groupBy, itemField: item, otherField: other, last: last, withinMs: within.map(milliseconds)))))
    }

    /// An online matrix-factorization model of the stream's user–item interactions
    /// (`Topology.MatrixFactorization`); its `factors` go to Redis per user and per item.
    public func model(_ name: String, _ model: Topology.MatrixFactorization) -> KTable {
        KTable(stream: builder.add(.init(name: name, input: self.name, operation: .model(model))))
    }

    /// Session windows per group on event time, with each session's features (see
    /// `Topology.SessionWindow`): records at most `gap` apart are one session, records up to
    /// `grace` behind stream time still count, and a closed session's keys are deleted
    /// (`closedTTLSeconds` nil) or kept that long. Durations are taken in whole milliseconds.
    public func session(_ name: String, groupBy: [String], gap: Duration, grace: Duration = .zero,
                        closedTTLSeconds: Int? = nil, eventType: String = "event_type", item: String = "item_id",
                        category: String = "category", price: String = "price",
                        cartTypes: [String] = ["cart"], purchaseTypes: [String] = ["purchase"]) -> KTable {
        session(name, Topology.SessionWindow(groupBy: groupBy, gapMs: milliseconds(gap), graceMs: milliseconds(grace),
                                             eventTypeField: eventType, itemField: item, categoryField: category, priceField: price,
                                             cartTypes: cartTypes, purchaseTypes: purchaseTypes, closedTTLSeconds: closedTTLSeconds))
    }

    /// Session windows as `window` describes them.
    public func session(_ name: String, _ window: Topology.SessionWindow) -> KTable {
        KTable(stream: builder.add(.init(name: name, input: self.name, operation: .session(window))))
    }

    @discardableResult
    public func toRedis(_ sink: Topology.RedisSink) -> KStream {
        builder.addSink(sink, to: name)
        return self
    }

    /// Writes the stream's records to a Kafka topic (see `Topology.TopicSink`).
    @discardableResult
    public func toTopic(_ sink: Topology.TopicSink) -> KStream {
        builder.addTopicSink(sink, to: name)
        return self
    }
}

/// The continuously updated result of an aggregation.
public struct KTable {
    let stream: KStream

    @discardableResult
    public func toRedis(_ sink: Topology.RedisSink) -> KTable {
        stream.builder.addSink(sink, to: stream.name)
        return self
    }

    /// The records the node forwards, for further nodes: a session node's closed sessions.
    public func toStream() -> KStream { stream }

    /// Groups (of a model: users) idle for `ttl` of event time leave the store and Redis (`Topology.Node.stateTTLMs`).
    @discardableResult
    public func stateTTL(_ ttl: Duration) -> KTable {
        stream.builder.setStateTTL(milliseconds(ttl), of: stream.name)
        return self
    }

    /// Aggregates this aggregate's rows again, by other fields (Kafka Streams'
    /// KTable.groupBy().aggregate()): every change of a row takes its old values back and
    /// adds its new ones; a group left with no rows leaves Redis. Only an `aggregate`'s rows,
    /// and only into an `aggregate`.
    public func aggregate(_ name: String, groupBy: [String], sum: [String] = [], weights: Topology.Weights? = nil) -> KTable {
        stream.aggregate(name, groupBy: groupBy, sum: sum, weights: weights)
    }
}

/// A duration in whole milliseconds, as topologies hold durations.
private func milliseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
}
