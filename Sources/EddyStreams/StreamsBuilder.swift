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

    public init(application: String) {
        self.application = application
    }

    @discardableResult
    public func stream(topic: String, key: String, timestamp: String, required: [String] = [],
                       deadLetterTopic: String? = nil) -> KStream {
        source = Topology.Source(topic: topic, keyField: key, timestampField: timestamp,
                                 requiredFields: required, deadLetterTopic: deadLetterTopic)
        return KStream(builder: self, name: nil)
    }

    /// Validates the topology (as a config file would be) and returns it.
    public func build() throws -> Topology {
        guard let source else { throw TopologyError([.key("source")], "no source stream: call stream(topic:...) first") }
        let topology = Topology(application: application, source: source, nodes: nodes)
        _ = try TopologyCompiler.compile(topology)
        return topology
    }

    func add(_ node: Topology.Node) -> KStream {
        nodes.append(node)
        return KStream(builder: self, name: node.name)
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

    public func aggregate(_ name: String, groupBy: [String], sum: [String] = [], weights: Topology.Weights? = nil) -> KTable {
        KTable(stream: builder.add(.init(name: name, input: self.name, operation: .aggregate(groupBy: groupBy, sum: sum, weights: weights))))
    }

    /// The `size` most recent values of `field` per group (outputs `count`, `recent`).
    public func recent(_ name: String, groupBy: [String], field: String, size: Int) -> KTable {
        KTable(stream: builder.add(.init(name: name, input: self.name, operation: .recent(groupBy: groupBy, field: field, size: size))))
    }

    /// An exponentially decayed weight sum per group on event time (outputs `count`, `score`,
    /// `last_time`, `rank`).
    public func decay(_ name: String, groupBy: [String], weights: Topology.Weights, halfLife: Duration) -> KTable {
        let ms = halfLife.components.seconds * 1000 + halfLife.components.attoseconds / 1_000_000_000_000_000
        return KTable(stream: builder.add(.init(name: name, input: self.name, operation: .decay(groupBy: groupBy, weights: weights, halfLifeMs: ms))))
    }

    @discardableResult
    public func toRedis(_ sink: Topology.RedisSink) -> KStream {
        builder.addSink(sink, to: name)
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
}
