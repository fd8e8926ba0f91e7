/// A stateful stream topology: one source topic, then a tree of named nodes.
///
/// Built from a YAML file (EddyConfig) or in Swift with `StreamsBuilder`; both produce this
/// value, which `TopologyCompiler` validates and turns into the runtime's executable form.
public struct Topology: Equatable, Sendable {
    /// The application id: consumer group id, prefix of internal topics and state.
    public var application: String
    public var source: Source
    /// Nodes in declaration order; a node's `input` names an earlier node, or nil for the source.
    public var nodes: [Node]

    public init(application: String, source: Source, nodes: [Node] = []) {
        self.application = application
        self.source = source
        self.nodes = nodes
    }

    public struct Source: Equatable, Sendable {
        public var topic: String
        /// The JSON field records are keyed (and partitioned) by.
        public var keyField: String
        /// The JSON field holding event time in epoch milliseconds.
        public var timestampField: String
        /// Fields every record must have (beyond key and timestamp), else it is dead-lettered.
        public var requiredFields: [String]
        /// Where undecodable or invalid records go; default `<application>-dlq`.
        public var deadLetterTopic: String?
        /// Records with larger values are dead-lettered without being parsed.
        public var maxValueBytes: Int

        public init(topic: String, keyField: String, timestampField: String, requiredFields: [String] = [],
                    deadLetterTopic: String? = nil, maxValueBytes: Int = 256 * 1024) {
            self.topic = topic
            self.keyField = keyField
            self.timestampField = timestampField
            self.requiredFields = requiredFields
            self.deadLetterTopic = deadLetterTopic
            self.maxValueBytes = maxValueBytes
        }
    }

    public struct Node: Equatable, Sendable {
        public var name: String
        public var input: String?
        public var operation: Operation
        public var sinks: [RedisSink]

        public init(name: String, input: String?, operation: Operation, sinks: [RedisSink] = []) {
            self.name = name
            self.input = input
            self.operation = operation
            self.sinks = sinks
        }
    }

    public enum Operation: Equatable, Sendable {
        /// Keeps records whose field satisfies the condition.
        case filter(field: String, Condition)
        /// Keeps only the listed fields visible downstream.
        case project([String])
        /// Counts records and sums numeric fields per group; with `weights`, also sums a weight
        /// looked up from a field's value. Outputs: the group fields, `count`, `sum_<field>`
        /// for each summed field, and `weighted_count`. A group without the source key
        /// re-keys the stream: records go through `<application>-<name>-repartition` to
        /// the tasks that own the new keys (as Kafka Streams' groupBy).
        case aggregate(groupBy: [String], sum: [String], weights: Weights? = nil)
        /// Keeps the `size` most recent values of `field` per group (by event time, ties in
        /// arrival order). Outputs: the group fields, `count` (records seen) and `recent`,
        /// a JSON array of the values, newest first. Re-keys as `aggregate` does.
        case recent(groupBy: [String], field: String, size: Int)
        /// An exponentially decayed sum of weights per group, on event time: a record of
        /// weight w at time t adds w·2^(−(T−t)/halfLife) to the value at time T; records
        /// whose value is not in `weights` are skipped. Outputs: the group fields, `count`,
        /// `score` (the value at `last_time`, the group's latest event time) and `rank` =
        /// log2(score) + last_time/halfLife, which orders groups by their value at any common
        /// time (the value at time T is 2^(rank − T/halfLife)): the score for a zset.
        /// Re-keys as `aggregate` does.
        case decay(groupBy: [String], weights: Weights, halfLifeMs: Int64)
        /// Passes records through unchanged (a named point to attach sinks to).
        case passthrough
    }

    /// A weight per value of `field` (`event_type`: view 1, click 3, ...); other values weigh 0.
    public struct Weights: Equatable, Sendable {
        public var field: String
        public var values: [Weight]

        public init(field: String, values: [Weight]) {
            self.field = field
            self.values = values
        }
    }

    public struct Weight: Equatable, Sendable {
        public var value: String
        public var weight: Double

        public init(_ value: String, _ weight: Double) {
            self.value = value
            self.weight = weight
        }
    }

    public enum Condition: Equatable, Sendable {
        case equals(String)
        case oneOf([String])
        case noneOf([String])
        case exists
    }

    /// Materializes a node's output in Redis. Templates like `user:{user_id}` name fields.
    public struct RedisSink: Equatable, Sendable {
        public enum Kind: String, Equatable, Sendable, CaseIterable { case hash, zset, string }
        public var kind: Kind
        public var key: String
        /// hash: the field template (nil: one hash field per output field).
        /// zset: the member template.
        public var field: String?
        /// The output field written as value (hash/string) or score (zset); default `count`.
        public var value: String?
        /// Expiry refreshed on each write; nil keeps keys forever.
        public var ttlSeconds: Int?

        public init(kind: Kind, key: String, field: String? = nil, value: String? = nil, ttlSeconds: Int? = nil) {
            self.kind = kind
            self.key = key
            self.field = field
            self.value = value
            self.ttlSeconds = ttlSeconds
        }
    }
}

extension Topology {
    public var deadLetterTopic: String { source.deadLetterTopic ?? "\(application)-dlq" }
}

extension Topology.Operation {
    /// Stateful operations group records; this is their group (nil for stateless ones).
    public var groupBy: [String]? {
        switch self {
        case .aggregate(let groupBy, _, _), .recent(let groupBy, _, _), .decay(let groupBy, _, _): return groupBy
        case .filter, .project, .passthrough: return nil
        }
    }
}
