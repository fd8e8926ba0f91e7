/// A stateful stream topology: one source topic, then a tree of named nodes, and the
/// global tables its joins read.
///
/// Built from a YAML file (EddyConfig) or in Swift with `StreamsBuilder`; both produce this
/// value, which `TopologyCompiler` validates and turns into the runtime's executable form.
public struct Topology: Equatable, Sendable {
    /// The application id: consumer group id, prefix of internal topics and state.
    public var application: String
    public var source: Source
    /// Nodes in declaration order; a node's `input` names an earlier node, or nil for the source.
    public var nodes: [Node]
    /// Global tables (`join` reads them), by name.
    public var tables: [Table]
    /// Set by `inNamespace`: every Redis key the sinks write starts with `<namespace>:`.
    public private(set) var namespace: String?

    public init(application: String, source: Source, nodes: [Node] = [], tables: [Table] = []) {
        self.application = application
        self.source = source
        self.nodes = nodes
        self.tables = tables
    }

    /// A global table (Kafka Streams' GlobalKTable): a topic, usually compacted, read as a
    /// table keyed by its record key; a record's value (a JSON object) is the key's row, a
    /// record without a value (a tombstone) deletes it. Every stream thread reads the whole
    /// topic before it processes anything and keeps reading it while it runs, so a join
    /// sees each update within about one poll of its arrival. The topic is its own
    /// changelog: nothing of it is stored locally.
    ///
    /// Not on event time: a record is joined with the row the thread holds when it
    /// processes it (as in Kafka Streams), so a replay joins every record with the table as
    /// it is at the replay.
    public struct Table: Equatable, Sendable {
        public var name: String
        public var topic: String

        public init(name: String, topic: String) {
            self.name = name
            self.topic = topic
        }
    }

    /// A stream–table join: adds `fields` of the row of `table` whose key is the record's
    /// `on` field to the record (replacing the record's own fields of those names; a field
    /// the row lacks is null).
    public struct Join: Equatable, Sendable {
        /// What happens to a record whose `on` field is missing or names no row.
        public enum MissingRow: String, Equatable, Sendable, CaseIterable {
            /// The record goes no further (an inner join).
            case drop
            /// The record goes on with the fields null (a left join).
            case null
            /// The record goes to the dead-letter topic with reason `missing_row`.
            case deadLetter = "dead_letter"
        }

        public var table: String
        public var on: String
        public var fields: [String]
        public var missing: MissingRow

        public init(table: String, on: String, fields: [String], missing: MissingRow = .drop) {
            self.table = table
            self.on = on
            self.fields = fields
            self.missing = missing
        }
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
        /// Kafka topics the node's records are written to.
        public var topicSinks: [TopicSink]
        /// For `aggregate`, `recent` and `decay` (without a top K) grouped by the source key:
        /// a group that no record touched for this long of event time leaves the store and
        /// Redis, so per-user state stays bounded however many users come and go. Decided
        /// on stream time in steps of an eighth of it: a group goes between `stateTTLMs` and
        /// 9/8 of it after its last record, the same on every replay. For `model`: a user
        /// whose last applied record is more than this older than the record being applied
        /// leaves the model (vector, history, Redis row; `ModelUserExpiry`).
        public var stateTTLMs: Int64?

        public init(name: String, input: String?, operation: Operation, sinks: [RedisSink] = [], topicSinks: [TopicSink] = [],
                    stateTTLMs: Int64? = nil) {
            self.name = name
            self.input = input
            self.operation = operation
            self.sinks = sinks
            self.topicSinks = topicSinks
            self.stateTTLMs = stateTTLMs
        }
    }

    /// Writes a node's records to a Kafka topic as JSON, in the same transaction as the
    /// state (created with the source's partition count if missing). Nodes that forward
    /// records have them: filter, project, join, passthrough, and a session node (its
    /// closed sessions).
    ///
    /// Each record carries the header `eddy.id`, `<source topic>/<partition>/<offset>/<n>`:
    /// the n-th record written to this topic because of that source record, the same on
    /// every re-processing (processing is deterministic); a record without a key goes to
    /// output partition `source partition mod partitions`. On a broker that hides aborted
    /// transactions a read_committed consumer sees each record once; on one that does not
    /// (Tansu 0.6.0), a consumer skips, in each partition of the topic, records whose id is
    /// not above the highest it has seen there from the same source partition, and keeps
    /// those highest ids with its own offsets. `docs/exactly-once.md` §7 says why that is
    /// exact, and why it is not under at-least-once.
    public struct TopicSink: Equatable, Sendable {
        public var topic: String
        /// The record key template, e.g. `{user_id}` (nil: records without a key).
        public var key: String?
        /// The fields written, in this order (nil: the record's fields as they are; for
        /// source records, their JSON unchanged).
        public var fields: [String]?

        public init(topic: String, key: String? = nil, fields: [String]? = nil) {
            self.topic = topic
            self.key = key
            self.fields = fields
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
        /// a JSON array of the values, newest first (for a `list` sink: the list itself).
        /// `distinct`: a value is kept once, at the latest time it was seen (a user's last
        /// distinct items). Re-keys as `aggregate` does.
        case recent(groupBy: [String], field: String, size: Int, distinct: Bool = false)
        /// An exponentially decayed sum of weights per group, on event time: a record of
        /// weight w at time t adds w·2^(−(T−t)/halfLife) to the value at time T; records
        /// whose value is not in `weights` are skipped. Outputs: the group fields, `count`,
        /// `score` (the value at `last_time`, the group's latest event time) and `rank` =
        /// log2(score) + last_time/halfLife, which orders groups by their value at any common
        /// time (the value at time T is 2^(rank − T/halfLife)): the score for a zset.
        /// With `trendHalfLifeMs` (a longer half-life), also `long_score` and `long_rank`,
        /// the same sum on that half-life, and `trend` = rank − long_rank: log2 of the short
        /// sum over the long one at any common time, up to a term the same for every group,
        /// so it orders groups by how much they rise against their usual level (trending).
        /// Re-keys as `aggregate` does; with `topK`, by the group's fields but its last
        /// (`TopK`: an item's neighbours are kept in one task, pruned to the best `k`).
        case decay(groupBy: [String], weights: Weights, halfLifeMs: Int64, trendHalfLifeMs: Int64? = nil, topK: TopK? = nil)
        /// Session windows per group on event time: a group's events less than `gapMs` apart
        /// form one session, which closes once stream time passes its end + gap + grace.
        /// See `SessionWindow` for the exact rules and the features written.
        case session(SessionWindow)
        /// Enriches records from a global table (`Join`).
        case join(Join)
        /// Pairs each record's item with the group's previous distinct items (`Pairs`):
        /// co-occurrence as records, for a co-view matrix.
        case pairs(Pairs)
        /// An online matrix-factorization model of implicit feedback (`MatrixFactorization`):
        /// user and item factors updated per record, in event-time order.
        case model(MatrixFactorization)
        /// Passes records through unchanged (a named point to attach sinks to).
        case passthrough
    }

    /// A decay's bound: per value of its group fields but the last (an item), only the `k`
    /// best values of the last field (its neighbours) are kept, so the store stays bounded
    /// however many pairs occur. Pruning is on event time and a function of the input alone,
    /// so a replay equals the live run:
    /// - Event time is cut into epochs of `everyMs`. A record is added to its group's entry
    ///   for its epoch; a record more than `graceMs` behind the stream time it is judged by
    ///   is late: skipped and counted (`eddy_late_records_total`).
    /// - Once stream time passes an epoch's end + `graceMs` (no record of it can come any
    ///   more), the epoch closes: each group's entry for it is added to the group's kept
    ///   value, and per item only the `k` groups of largest value (`rank`; ties: the smaller
    ///   last field first) stay; the others leave the store and Redis.
    /// - What a sink shows is the kept value plus the epochs still open: a new neighbour
    ///   appears at once, and competes for a place when its epoch closes.
    public struct TopK: Sendable, Equatable {
        public var k: Int
        public var everyMs: Int64
        public var graceMs: Int64

        public init(k: Int, everyMs: Int64 = 86_400_000, graceMs: Int64 = 3_600_000) {
            self.k = k
            self.everyMs = everyMs
            self.graceMs = graceMs
        }
    }

    /// Co-occurrence pairs per group (a user's items): for each record, its item paired
    /// with each of the group's previous distinct items, as records a `decay` grouped by
    /// `[item, other]` turns into a decayed co-view matrix (re-keyed by item).
    ///
    /// Rules, per task, with records in arrival order:
    /// - A group keeps its last `last` distinct items, most recently arrived first, each with
    ///   the largest event time it was seen at.
    /// - A record of group g with item i at time t pairs with every kept item j ≠ i whose
    ///   time tj has |t − tj| ≤ `withinMs` (any tj when nil), in that order. For each, two
    ///   records are forwarded: the record with `other` = j, and the record with its item
    ///   set to j and `other` = i (so both items' neighbour lists count the pair). Both
    ///   keep the record's other fields (an event type for the decay's weights) and time.
    /// - Then i moves to (or enters) the front; the list is cut to `last` items.
    /// - With `withinMs`, a group whose newest time + `withinMs` stream time has passed can
    ///   pair with nothing recent any more: it leaves the store (an event-time timer), and
    ///   the group starts anew.
    ///
    /// `Tests/EddyTests/PairsTests.swift` has a brute-force model of these rules.
    public struct Pairs: Equatable, Sendable {
        /// Whose items pair up (must include the source key: pairs run in source tasks).
        public var groupBy: [String]
        /// The item field.
        public var itemField: String
        /// The field the paired item is written to.
        public var otherField: String
        /// How many distinct previous items a record pairs with, at most; positive.
        public var last: Int
        /// Only items seen at most this long before or after (ms of event time); nil: any.
        public var withinMs: Int64?

        public init(groupBy: [String], itemField: String = "item_id", otherField: String = "other_item", last: Int = 20, withinMs: Int64? = nil) {
            self.groupBy = groupBy
            self.itemField = itemField
            self.otherField = otherField
            self.last = last
            self.withinMs = withinMs
        }
    }

    /// An online implicit-feedback matrix factorization (incremental ALS): a factor vector
    /// per user and per item, updated on each record, so that a user's vector dotted with
    /// an item's predicts whether the user will interact with the item.
    ///
    /// Rules (`Tests/EddyTestSupport/ModelReference.swift` is a plain model of them):
    /// - One task keeps the whole model: every record is re-keyed to one partition of
    ///   `<application>-<name>-repartition`. There, records are applied in the order of
    ///   (event time, user, item, weight), not in arrival order, once the task's stream
    ///   time (the least over the upstream tasks) passes their time + `graceMs`; a record
    ///   more than `graceMs` behind the stream time of the task that sent it is late
    ///   (skipped, `eddy_late_records_total`). So, under exactly-once, the model is a
    ///   function of the input alone: a replay, a restart or another interleaving of
    ///   partitions gives the same factors, bit for bit. (Under at-least-once a restart
    ///   may apply a record twice, or find it late, as it may count one twice elsewhere.)
    /// - A record whose `weights` value is not listed is skipped. Otherwise the cell
    ///   (user, item) gains confidence `alpha` · weight; the user keeps its `userHistory`
    ///   most recently touched items with their confidence, the item its `itemHistory`
    ///   most recently touched users.
    /// - The user's vector is then updated against the current item vectors by one sweep of
    ///   coordinate descent on the implicit-ALS objective over its history (every item
    ///   counts as a 0 with confidence `missingWeight`, each history item as a 1 with
    ///   confidence 1 + c), then the item's against the current user vectors, likewise
    ///   (`ImplicitALS` has the equations).
    /// - A user or item seen for the first time starts from a small vector that is a fixed
    ///   function of its id (`ImplicitALS.initialVector`).
    public struct MatrixFactorization: Equatable, Sendable {
        public var userField: String
        public var itemField: String
        /// The confidence each record adds (`event_type`: view 1, click 3, ...).
        public var weights: Weights
        /// The vectors' length (the model's rank); positive, at most `maxFactors`.
        public var factors: Int
        /// λ of the normal equations (ridge regularization); positive.
        public var regularization: Double
        /// Confidence per unit of weight; positive.
        public var alpha: Double
        /// The confidence of a 0 (an item the user has no event with), in (0, 1].
        public var missingWeight: Double
        /// Items a user remembers (its update reads them), and users an item remembers.
        public var userHistory: Int
        public var itemHistory: Int
        /// How long (ms of event time) records wait to be applied in order; ≥ 0.
        public var graceMs: Int64

        public static let maxFactors = 256
        /// The most a history holds: each record's two updates read that many vectors.
        public static let maxHistory = 10_000

        public init(userField: String = "user_id", itemField: String = "item_id", weights: Weights, factors: Int = 32,
                    regularization: Double = 0.1, alpha: Double = 0.3, missingWeight: Double = 1, userHistory: Int = 100,
                    itemHistory: Int = 200, graceMs: Int64 = 60_000) {
            self.userField = userField
            self.itemField = itemField
            self.weights = weights
            self.factors = factors
            self.regularization = regularization
            self.alpha = alpha
            self.missingWeight = missingWeight
            self.userHistory = userHistory
            self.itemHistory = itemHistory
            self.graceMs = graceMs
        }
    }

    /// Session windows on event time, per group (`groupBy`), with the session's features.
    ///
    /// Rules, per task, with records in arrival order:
    /// - Stream time is the largest event time seen so far, including the current record's.
    /// - A record of group k at time t touches every open session of k with
    ///   start − gap ≤ t ≤ end + gap. The merged session spans the min/max of those
    ///   sessions' starts/ends and t. If merged.end < stream time − grace the record is
    ///   late: it is counted as such and changes nothing. Otherwise the touched sessions
    ///   are replaced by the merged one, holding all their records and this one (so a
    ///   record arriving out of order, within grace, can merge two sessions).
    /// - After each record, every open session with end + gap + grace < stream time
    ///   closes, in order of (end + gap + grace, group, start).
    ///
    /// A session is identified by its group and start (`session_id`, `<group>:<start>`).
    /// Its features, computed over its records: the number of records; a count per value of
    /// `eventTypeField` (records without one are not counted there); the number of distinct
    /// values of `itemField`; a count per value of `categoryField`, and the top category
    /// (highest count, ties to the lexicographically smallest, "" when none); the last item
    /// (the `itemField` of the record with the largest event time among those that have
    /// one, ties to the later arrival, "" when none); the cart and purchase values (the sum
    /// of `priceField` over records whose type is in `cartTypes` / `purchaseTypes` and
    /// that have a price); start, end and duration (end − start, ms).
    ///
    /// When a session closes its Redis keys are deleted (`closedTTLSeconds` nil), or kept
    /// with that expiry.
    ///
    /// `Tests/EddyTests/SessionReference.swift` is a brute-force model of these rules.
    public struct SessionWindow: Equatable, Sendable {
        /// The group fields: sessions are per group (the session's key).
        public var groupBy: [String]
        /// Records of a group at most this far apart (ms) are in one session; positive.
        public var gapMs: Int64
        /// How far (ms) behind stream time a record may still land in a session; ≥ 0.
        public var graceMs: Int64
        /// The fields features are computed from.
        public var eventTypeField: String
        public var itemField: String
        public var categoryField: String
        /// A number; a record without a price adds nothing to the cart or purchase value.
        public var priceField: String
        /// Event types whose price adds to the cart value.
        public var cartTypes: [String]
        /// Event types whose price adds to the purchase value.
        public var purchaseTypes: [String]
        /// nil: a closed session's Redis keys are deleted; else they are kept with this TTL.
        public var closedTTLSeconds: Int?

        public init(groupBy: [String], gapMs: Int64, graceMs: Int64 = 0, eventTypeField: String = "event_type",
                    itemField: String = "item_id", categoryField: String = "category", priceField: String = "price",
                    cartTypes: [String] = ["cart"], purchaseTypes: [String] = ["purchase"], closedTTLSeconds: Int? = nil) {
            self.groupBy = groupBy
            self.gapMs = gapMs
            self.graceMs = graceMs
            self.eventTypeField = eventTypeField
            self.itemField = itemField
            self.categoryField = categoryField
            self.priceField = priceField
            self.cartTypes = cartTypes
            self.purchaseTypes = purchaseTypes
            self.closedTTLSeconds = closedTTLSeconds
        }
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
    /// A `list` sink writes a `recent` node's values as a Redis list, newest first (each
    /// commit replaces the list: DEL, then RPUSH).
    public struct RedisSink: Equatable, Sendable {
        public enum Kind: String, Equatable, Sendable, CaseIterable { case hash, zset, string, list }
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
    /// The topology writing its Redis keys under `namespace` (`v2` puts `item:popularity`
    /// at `v2:item:popularity`), so a replay builds its state beside the live one and
    /// `eddy promote v2` switches `eddy serve` to it (Kappa reprocessing). Give the replay
    /// its own application id too: watermarks, changelogs and offsets are per application.
    public func inNamespace(_ namespace: String) -> Topology {
        var t = self
        t.namespace = namespace
        for i in t.nodes.indices {
            for j in t.nodes[i].sinks.indices { t.nodes[i].sinks[j].key = "\(namespace):" + t.nodes[i].sinks[j].key }
        }
        return t
    }

    public var deadLetterTopic: String { source.deadLetterTopic ?? "\(application)-dlq" }
}

extension Topology.Operation {
    /// Stateful operations group records; this is their group (nil for stateless ones).
    public var groupBy: [String]? {
        switch self {
        case .aggregate(let groupBy, _, _), .recent(let groupBy, _, _, _), .decay(let groupBy, _, _, _, _): return groupBy
        case .session(let window): return window.groupBy
        case .pairs(let pairs): return pairs.groupBy
        case .model(let model): return [model.userField, model.itemField]
        case .filter, .project, .join, .passthrough: return nil
        }
    }
}
