/// The executable form of a `Topology`: field ids for the JSON extractor, nodes in
/// evaluation order, aggregates and sinks with their templates resolved.
struct CompiledTopology: Sendable {
    struct Node: Sendable {
        enum Kind: Sendable {
            case filter(field: Int, Topology.Condition)
            case pass
            case aggregate(Int)
            case session(SessionOperator.Spec)
            case join(JoinOperator.Spec)
            case pairs(PairsOperator.Spec)
            case model(ModelOperator.Spec)
        }
        let name: String
        /// Index of the input node, or -1 for the source.
        let parent: Int
        var kind: Kind
        /// Sinks fed per record (nodes that are not aggregates).
        let sinks: [CompiledSink]
        /// Output topics fed with every record the node forwards.
        var topicSinks: [CompiledTopicSink] = []
        /// The sub-topology whose tasks run the node (own its state).
        var subtopology = 0
        /// Set on a node that re-keys: the stream reaches it through this topic, and it is
        /// the first node of sub-topology `subtopology`.
        var repartition: RepartitionEdge? = nil
    }

    /// Where the stream is re-keyed, in front of one node (Kafka Streams' repartition
    /// topic): tasks of the parent's sub-topology send to `topic`, partitioned by the
    /// node's group key, and the tasks of the node's sub-topology read it.
    struct RepartitionEdge: Sendable {
        enum Kind: Sendable {
            /// An aggregate's partials, combined upstream between two commits (its merge is
            /// associative), merged into its store downstream.
            case partials
            /// The records themselves (operators whose state depends on each record:
            /// sessions, pairs), processed downstream as they were sent.
            case records
            /// Source records whose Kafka key is not their key field's value, sent to the
            /// partition Kafka's partitioner gives that value (`KafkaKeyPartitioner`) and
            /// processed there by the source's task as if they had arrived keyed.
            case sourceRecords
        }
        let kind: Kind
        let topic: String
        /// Its place among the topology's repartition topics (`CompiledTopology.repartitionEdges`).
        let index: Int
        /// The sub-topology whose tasks send to it: the parent's.
        let upstream: Int
        /// The node's group fields: records are partitioned by their values.
        let groupFields: [Int]
    }

    /// A part of the topology between re-key points (Kafka Streams' sub-topology): its
    /// tasks, one per partition of `topic`, run its nodes and own their stores.
    struct Subtopology: Sendable {
        let index: Int
        /// The source topic (sub-topology 0), or the repartition topic feeding `rekeyNode`.
        let topic: String
        /// The node it starts at (nil: the source's sub-topology).
        let rekeyNode: Int?
        /// Its partition key: every record with the same values of these fields is in one task.
        let key: [String]
    }

    struct Aggregate: Sendable {
        /// What an entry holds besides its count.
        enum Function: Sendable {
            /// The summed fields, then the weighted count (if weighted).
            case sums
            /// The `size` most recent values of a field (each once, if `distinct`).
            case recent(field: Int, size: Int, distinct: Bool = false)
            /// Two numbers: the decayed weight sum at the group's latest event time, and that
            /// time; with a trend half-life, a third: the sum decayed on that half-life.
            case decay(halfLifeMs: Double, trendHalfLifeMs: Double? = nil)
        }

        /// Its position in `aggregates`: the store's number.
        let index: Int
        let name: String
        let groupFields: [Int]
        var function: Function = .sums
        var sumFields: [Int] = []
        /// The field whose value picks a weight, and the weights: for `sums` summed after
        /// `sumFields`; for `decay` the decayed quantity.
        var weightField: Int? = nil
        var weights: [([UInt8], Double)] = []
        /// Set when the group does not include the source key: the stream is re-keyed
        /// through this topic (upstream tasks combine, downstream tasks own the store).
        var repartitionTopic: String? = nil
        var sinks: [CompiledSink] = []
        /// A decay's bound (`Topology.TopK`); `perFields`: the group fields an item is (all
        /// but the last), which also pick the partition when it re-keys.
        var topK: TopK? = nil
        /// `Topology.Node.stateTTLMs`: idle groups leave (`IdleExpiry`).
        var stateTTLMs: Int64? = nil

        struct TopK: Sendable {
            let k: Int
            let everyMs: Int64
            let graceMs: Int64
            let perFields: Int
        }

    }

    /// A global table and the columns the joins read from it.
    struct Table: Sendable {
        let name: String
        let topic: String
        var columns: [String] = []
    }

    /// A changelogged store of a task: its number is its changelog topic's index.
    struct Store: Sendable {
        enum Role: Sendable {
            /// The table of aggregate `i`.
            case aggregate(Int)
            /// The intake bookkeeping of the sub-topology started by re-key node `node`
            /// (-1: of the source's tasks, for `sourceRekey`).
            case intake(node: Int)
            /// The key-value store of node `i`.
            case keyValue(node: Int)
            /// Stream time and timers of a sub-topology's tasks.
            case timers
        }
        let index: Int
        /// Names the changelog topic (`<application>-<name>-changelog`).
        let name: String
        let role: Role
        /// The sub-topology whose tasks hold the store.
        let subtopology: Int

        /// The store's column family for one partition.
        func columnFamilyName(partition: Int32) -> String {
            switch role {
            case .aggregate: return "agg.\(name).\(partition)"
            case .intake: return "intake.\(name).\(partition)"
            case .keyValue: return "kv.\(name).\(partition)"
            case .timers: return subtopology == 0 ? "timers.\(partition)" : "timers.\(name).\(partition)"
            }
        }
    }

    let topology: Topology
    /// JSON field names the runtime extracts; a field id is an index here.
    let fields: [String]
    let keyField: Int
    let timestampField: Int
    /// Fields every record must have.
    let requiredFields: [Int]
    /// Fields that must be numbers when present.
    let numericFields: [Int]
    let nodes: [Node]
    let aggregates: [Aggregate]
    /// Every store, in changelog order.
    let stores: [Store]
    let tables: [Table]
    /// Sub-topology 0 reads the source; each further one a repartition topic.
    let subtopologies: [Subtopology]
    /// Every re-key point, in `RepartitionEdge.index` order: (node, edge).
    var repartitions: [(node: Int, edge: RepartitionEdge)] {
        nodes.indices.compactMap { i in nodes[i].repartition.map { (i, $0) } }
    }
    /// `<application>-source-repartition`: the source's tasks send it the records keyed
    /// otherwise than by their key field, and read it back (partition p with source
    /// partition p), so such records are counted in the task of their key.
    let sourceRekey: RepartitionEdge
    /// Every repartition topic's edge: the nodes' (`repartitions`), then `sourceRekey`.
    var repartitionEdges: [RepartitionEdge] { repartitions.map(\.edge) + [sourceRekey] }

    /// Every output topic, once each, in `CompiledTopicSink.topicIndex` order.
    var outputTopics: [String] {
        var seen = Set<String>()
        return nodes.flatMap(\.topicSinks).map(\.topic).filter { seen.insert($0).inserted }
    }

    /// The sub-topology whose tasks read `topic` (nil: no topic of this topology's).
    func subtopology(reading topic: String) -> Int? { subtopologies.firstIndex { $0.topic == topic } }
}

/// An output topic with the key template and fields resolved against the node's records.
struct CompiledTopicSink: Sendable {
    let topic: String
    let key: Template?
    /// `"name":` as JSON and the field's id, in output order; nil: the record's JSON as it is.
    let fields: [([UInt8], Int)]?
    /// The topic's place in `CompiledTopology.outputTopics`.
    var topicIndex = 0
}

/// A Redis sink with templates resolved against its node's output.
struct CompiledSink: Sendable {
    let kind: Topology.RedisSink.Kind
    let key: Template
    /// hash field or zset member; nil for a hash means "every output in `outputs`".
    let field: Template?
    /// The value (hash, string) or score (zset); nil for a hash that writes `outputs`.
    let value: OutputRef?
    /// For hashes without a field template: (hash field name, value) pairs.
    let outputs: [([UInt8], OutputRef)]
    let ttlSeconds: Int?
}

/// Validates a `Topology` and compiles it; every error carries the path of the field at fault.
enum TopologyCompiler {
    /// The fields a node's records expose. The source's are open (any field of the JSON);
    /// `project` closes them; an aggregate exposes its group fields, `count` and `sum_*`.
    private enum Schema {
        case open
        case closed([String: OutputRef], order: [String])

        func resolve(_ name: String, fieldID: (String) -> Int) -> OutputRef? {
            switch self {
            case .open: return .field(fieldID(name))
            case .closed(let refs, _): return refs[name]
            }
        }

        var available: String {
            if case .closed(_, let order) = self { return order.joined(separator: ", ") }
            return "any field of the input"
        }
    }

    static func compile(_ topology: Topology) throws -> CompiledTopology {
        var fields: [String] = []
        func fieldID(_ name: String) -> Int {
            if let i = fields.firstIndex(of: name) { return i }
            fields.append(name)
            return fields.count - 1
        }
        typealias P = TopologyError.PathComponent

        try checkName(topology.application, [.key("application")])
        if let namespace = topology.namespace { try checkName(namespace, [.key("namespace")]) }
        let source = topology.source
        // Topic names follow Kafka's legal alphabet, the same as node names'.
        try checkName(source.topic, [.key("source"), .key("topic")])
        if let deadLetterTopic = source.deadLetterTopic {
            try checkName(deadLetterTopic, [.key("source"), .key("dead_letter_topic")])
        }
        try checkNonEmpty(source.keyField, [.key("source"), .key("key")])
        try checkNonEmpty(source.timestampField, [.key("source"), .key("timestamp")])
        if source.maxValueBytes <= 0 {
            throw TopologyError([.key("source"), .key("max_value_bytes")], "must be positive")
        }
        let keyField = fieldID(source.keyField)
        let timestampField = fieldID(source.timestampField)
        var required = [keyField, timestampField]
        for (i, name) in source.requiredFields.enumerated() {
            try checkNonEmpty(name, [.key("source"), .key("required"), .index(i)])
            required.append(fieldID(name))
        }
        var numeric: [Int] = []
        var tables: [CompiledTopology.Table] = []
        for table in topology.tables {
            let tpath: [P] = [.key("tables"), .key(table.name)]
            try checkName(table.name, [.key("tables"), .key(table.name)])
            if tables.contains(where: { $0.name == table.name }) { throw TopologyError(tpath, "duplicate table name '\(table.name)'") }
            try checkName(table.topic, tpath + [.key("topic")])
            if table.topic == source.topic || table.topic == topology.deadLetterTopic {
                throw TopologyError(tpath + [.key("topic")], "'\(table.topic)' is the \(table.topic == source.topic ? "source" : "dead-letter") topic; a table reads a topic of its own (e.g. a compacted catalog)")
            }
            try checkNotInternal(table.topic, application: topology.application, tpath + [.key("topic")])
            tables.append(.init(name: table.name, topic: table.topic))
        }
        /// Per join node, what the nodes below it need of the fields it adds: the join checks
        /// those on the joined record (set on its spec once every node's needs are known),
        /// not the source decoder.
        var joinRequired: [Int: Set<Int>] = [:], joinNumeric: [Int: Set<Int>] = [:]
        if topology.nodes.isEmpty {
            // Most likely a mis-indented or forgotten list: such a topology would run and write nothing.
            throw TopologyError([.key("nodes")], "lists no nodes; a topology needs at least one (a filter, project, join, aggregate, recent, decay, session, pairs or to_redis node)")
        }

        var nodes: [CompiledTopology.Node] = []
        var aggregates: [CompiledTopology.Aggregate] = []
        var subtopologies = [CompiledTopology.Subtopology(index: 0, topic: source.topic, rekeyNode: nil, key: [source.keyField])]
        var repartitionCount = 0
        var schemas: [Schema] = []
        var indexByName: [String: Int] = [:]
        /// Per node: whether its records are source records (no session or aggregate above
        /// it). Only those are checked by the source decoder; records an operator emits are
        /// written by Eddy with every field.
        var readsSource: [Bool] = []
        /// Per node: whether each of its records is one source record (not a pair).
        var oneRecordPerSource: [Bool] = []
        /// Per node: the fields joins above it added, with the nearest join that added each.
        var joinedAbove: [[Int: Int]] = []

        for (i, node) in topology.nodes.enumerated() {
            let at: [P] = [.key("nodes"), .index(i)]
            try checkName(node.name, at + [.key("name")])
            if node.stateTTLMs != nil {
                switch node.operation {
                case .aggregate, .recent, .decay, .model: break
                default:
                    throw TopologyError(at + [.key("state_ttl")], "only an aggregate, recent, decay or model node keeps state that a state_ttl expires (a session leaves with closed_ttl; pairs forget with 'within')")
                }
            }
            if indexByName[node.name] != nil {
                throw TopologyError(at + [.key("name")], "duplicate node name '\(node.name)'")
            }
            var parent = -1
            var schema = Schema.open
            if let input = node.input {
                guard let p = indexByName[input] else {
                    let known = indexByName.keys.sorted().joined(separator: ", ")
                    throw TopologyError(at + [.key("input")], "unknown input '\(input)' (inputs must be declared earlier; known: \(known.isEmpty ? "none" : known))")
                }
                if case .aggregate = nodes[p].kind {
                    // A table's changes feed a further aggregate (KTable.groupBy().aggregate()):
                    // each change takes the row's old values back and adds its new ones.
                    guard case .aggregate = topology.nodes[p].operation, case .aggregate = node.operation else {
                        throw TopologyError(at + [.key("input")], "'\(input)' (\(Self.operationKey(topology.nodes[p].operation))) cannot feed a '\(Self.operationKey(node.operation))' node: the rows of an 'aggregate' feed only another 'aggregate' (count and sums can take a row's old values back when it changes; recent, decay and sessions cannot)")
                    }
                    if node.stateTTLMs != nil {
                        throw TopologyError(at + [.key("state_ttl")], "'\(input)' feeds this node its rows, whose changes take old values back: a group expired here would have nothing to take them from (leave state_ttl out, or aggregate the records themselves)")
                    }
                    if topology.nodes[p].stateTTLMs != nil {
                        throw TopologyError(at + [.key("input")], "'\(input)' has a state_ttl: its groups can leave when idle, and an aggregate of its rows could not take their values back then (take its state_ttl away, or aggregate the records themselves)")
                    }
                }
                if case .model = nodes[p].kind {
                    throw TopologyError(at + [.key("input")], "'\(input)' is a model: it forwards no records (its factors go to Redis)")
                }
                parent = p
                schema = schemas[p]
            }
            // A stateful node whose group lacks its sub-topology's key re-keys the stream: it
            // starts a sub-topology of its own, read from a repartition topic.
            let upstream = parent < 0 ? 0 : nodes[parent].subtopology
            var subtopology = upstream
            var rekeyed: RepartitionStart?
            // A decay with a top K keeps a group's neighbours (its last field) in one task.
            let partitionedBy: [String]? = {
                if case .decay(let groupBy, _, _, _, .some) = node.operation { return Array(groupBy.dropLast()) }
                // The model is one task's: every record goes to the same partition.
                if case .model = node.operation { return [] }
                return node.operation.groupBy
            }()
            if let groupBy = partitionedBy, !Set(groupBy).isSuperset(of: subtopologies[upstream].key) {
                if node.name == Self.reservedNodeName {
                    throw TopologyError(at + [.key("name")], "'\(Self.reservedNodeName)' names the topic that re-keys source records (\(Repartitions.topic(application: topology.application, node: Self.reservedNodeName))): name this node otherwise")
                }
                subtopology = subtopologies.count
                let topic = Repartitions.topic(application: topology.application, node: node.name)
                subtopologies.append(.init(index: subtopology, topic: topic, rekeyNode: i, key: groupBy))
                let kind: CompiledTopology.RepartitionEdge.Kind
                switch node.operation {
                case .aggregate, .recent, .decay: kind = .partials
                default: kind = .records
                }
                rekeyed = RepartitionStart(kind: kind, topic: topic, upstream: upstream)
            }
            let fromSource = parent < 0 || (readsSource[parent] && { switch nodes[parent].kind { case .aggregate, .session: return false; default: return true } }())
            // Each record here is one source record, so it can be dead-lettered: not one of
            // the pairs a source record became.
            let isSourceRecord = fromSource && (parent < 0 || (oneRecordPerSource[parent] && { if case .pairs = nodes[parent].kind { return false }; return true }()))
            var joined: [Int: Int] = parent < 0 ? [:] : joinedAbove[parent]
            if parent >= 0, case .aggregate = nodes[parent].kind { joined = [:] }  // its rows are new records
            if parent >= 0, case .session = nodes[parent].kind { joined = [:] }
            /// A field the node needs present, or numeric: checked by the join above that
            /// adds it, else by the source decoder on source records (records an operator
            /// emits have every field it writes).
            func require(_ id: Int) {
                if let j = joined[id] { joinRequired[j, default: []].insert(id) } else if fromSource { required.append(id) }
            }
            func needNumber(_ id: Int) {
                if let j = joined[id] { joinNumeric[j, default: []].insert(id) } else if fromSource { numeric.append(id) }
            }
            func resolveField(_ name: String, _ path: [P]) throws -> Int {
                try checkNonEmpty(name, path)
                guard case .field(let id)? = schema.resolve(name, fieldID: fieldID) else {
                    throw TopologyError(path, "field '\(name)' is not available here (available: \(schema.available))")
                }
                return id
            }

            var kind: CompiledTopology.Node.Kind
            var outSchema = schema
            /// What the node's own sinks see, when it differs from what its children see.
            var stateSchema: Schema?
            switch node.operation {
            case .filter(let field, let condition):
                let id = try resolveField(field, at + [.key("filter"), .key("field")])
                switch condition {
                case .oneOf(let vs), .noneOf(let vs):
                    if vs.isEmpty { throw TopologyError(at + [.key("filter")], "the value list is empty") }
                case .equals, .exists: break
                }
                kind = .filter(field: id, condition)
            case .project(let names):
                if names.isEmpty { throw TopologyError(at + [.key("project")], "lists no fields") }
                var refs: [String: OutputRef] = [:]
                for (j, name) in names.enumerated() {
                    refs[name] = .field(try resolveField(name, at + [.key("project"), .index(j)]))
                }
                outSchema = .closed(refs, order: names)
                kind = .pass
            case .passthrough:
                kind = .pass
            case .join(let join):
                let jpath = at + [.key("join")]
                guard let t = tables.firstIndex(where: { $0.name == join.table }) else {
                    let known = tables.map(\.name).joined(separator: ", ")
                    throw TopologyError(jpath + [.key("table")], "unknown table '\(join.table)' (declare it under 'tables:'; known: \(known.isEmpty ? "none" : known))")
                }
                let on = try resolveField(join.on, jpath + [.key("on")])
                if join.fields.isEmpty { throw TopologyError(jpath + [.key("fields")], "lists no fields (which columns of the row to add)") }
                if !isSourceRecord, join.missing == .deadLetter {
                    throw TopologyError(jpath + [.key("missing")], "the records here are not source records (closed sessions, an aggregate's rows, or pairs) and cannot be dead-lettered: use drop or null")
                }
                var columns: [Int] = [], ids: [Int] = []
                var refs: [String: OutputRef] = [:]
                for (j, name) in join.fields.enumerated() {
                    let fpath = jpath + [.key("fields"), .index(j)]
                    try checkNonEmpty(name, fpath)
                    if name == source.keyField || name == source.timestampField {
                        throw TopologyError(fpath, "'\(name)' is the source's \(name == source.keyField ? "key" : "event time"); a join must not replace it")
                    }
                    if subtopologies[subtopology].key.contains(name) {
                        throw TopologyError(fpath, "'\(name)' is the key the stream is partitioned by here (re-keyed by [\(subtopologies[subtopology].key.joined(separator: ", "))]); a join must not replace it")
                    }
                    if join.fields[..<j].contains(name) { throw TopologyError(fpath, "'\(name)' is listed twice") }
                    if let c = tables[t].columns.firstIndex(of: name) { columns.append(c) } else {
                        tables[t].columns.append(name)
                        columns.append(tables[t].columns.count - 1)
                    }
                    let id = fieldID(name)
                    ids.append(id)
                    joined[id] = i
                    refs[name] = .field(id)
                }
                if case .closed(let before, let order) = schema {
                    outSchema = .closed(before.merging(refs) { $1 }, order: order + join.fields.filter { before[$0] == nil })
                }
                kind = .join(JoinOperator.Spec(table: t, on: on, columns: columns, fieldIDs: ids,
                                               names: join.fields.map(Self.jsonName), missing: join.missing, readsSource: isSourceRecord))
            case .pairs(let pairs):
                let ppath = at + [.key("pairs")]
                if pairs.groupBy.isEmpty { throw TopologyError(ppath + [.key("group_by")], "lists no fields") }
                if pairs.last <= 0 { throw TopologyError(ppath + [.key("last")], "must be positive") }
                if pairs.last > Self.maxPairsLast { throw TopologyError(ppath + [.key("last")], "must be at most \(Self.maxPairsLast) (each record forwards two records per item kept)") }
                if let within = pairs.withinMs, within <= 0 { throw TopologyError(ppath + [.key("within")], "must be positive") }
                var groupIDs: [Int] = []
                for (j, name) in pairs.groupBy.enumerated() {
                    let id = try resolveField(name, ppath + [.key("group_by"), .index(j)])
                    groupIDs.append(id)
                    require(id)
                }
                let item = try resolveField(pairs.itemField, ppath + [.key("item")])
                require(item)
                try checkNonEmpty(pairs.otherField, ppath + [.key("other")])
                if pairs.otherField == pairs.itemField || pairs.groupBy.contains(pairs.otherField)
                    || pairs.otherField == source.keyField || pairs.otherField == source.timestampField {
                    throw TopologyError(ppath + [.key("other")], "'\(pairs.otherField)' is already the item, a group field, the source key or the event time: name the paired item's field otherwise (e.g. other_item)")
                }
                let other = fieldID(pairs.otherField)
                // The paired item is a field this node adds: what the nodes below need of it
                // is checked here, not at the source (it is always a string).
                joined[other] = i
                if case .closed(let before, let order) = schema {
                    outSchema = .closed(before.merging([pairs.otherField: .field(other)]) { $1 },
                                        order: order + (before[pairs.otherField] == nil ? [pairs.otherField] : []))
                }
                kind = .pairs(PairsOperator.Spec(groupFields: groupIDs, itemField: item, otherField: other,
                                                 itemName: Self.jsonName(pairs.itemField), otherName: Self.jsonName(pairs.otherField),
                                                 last: pairs.last, withinMs: pairs.withinMs))
            case .session(let window):
                let spath = at + [.key("session")]
                if window.groupBy.isEmpty { throw TopologyError(spath + [.key("group_by")], "lists no fields") }
                if window.gapMs <= 0 { throw TopologyError(spath + [.key("gap")], "must be positive") }
                if window.graceMs < 0 { throw TopologyError(spath + [.key("grace")], "must not be negative") }
                var refs: [String: OutputRef] = [:]
                var groupIDs: [Int] = []
                for (j, name) in window.groupBy.enumerated() {
                    let id = try resolveField(name, spath + [.key("group_by"), .index(j)])
                    groupIDs.append(id)
                    require(id)
                    refs[name] = .group(j)
                }
                try checkGroupNames(window.groupBy, against: SessionOperator.outputs.map(\.name), spath + [.key("group_by")])
                for (i, output) in SessionOperator.outputs.enumerated() { refs[output.name] = .output(i, isNumber: output.isNumber) }
                let price = try resolveField(window.priceField, spath + [.key("price")])
                needNumber(price)
                stateSchema = .closed(refs, order: window.groupBy + SessionOperator.outputs.map(\.name))
                // Children see closed sessions as records with those fields.
                let names = window.groupBy + SessionOperator.outputs.map(\.name)
                outSchema = .closed(Dictionary(uniqueKeysWithValues: names.map { ($0, OutputRef.field(fieldID($0))) }), order: names)
                kind = .session(SessionOperator.Spec(
                    groupFields: groupIDs, groupNames: window.groupBy, gapMs: window.gapMs, graceMs: window.graceMs,
                    eventTypeField: try resolveField(window.eventTypeField, spath + [.key("event_type")]),
                    itemField: try resolveField(window.itemField, spath + [.key("item")]),
                    categoryField: try resolveField(window.categoryField, spath + [.key("category")]), priceField: price,
                    cartTypes: window.cartTypes.map { Array($0.utf8) }, purchaseTypes: window.purchaseTypes.map { Array($0.utf8) },
                    closedTTLSeconds: window.closedTTLSeconds, sinks: []))
            case .model(let model):
                let mpath = at + [.key("model")]
                let user = try resolveField(model.userField, mpath + [.key("user")])
                let item = try resolveField(model.itemField, mpath + [.key("item")])
                if user == item { throw TopologyError(mpath + [.key("item")], "'\(model.itemField)' is also the user field: a model factors users against other things") }
                require(user)
                require(item)
                let wpath = mpath + [.key("weights")]
                let weightField = try resolveField(model.weights.field, wpath + [.key("field")])
                if model.weights.values.isEmpty { throw TopologyError(wpath + [.key("values")], "lists no values") }
                if let bad = model.weights.values.firstIndex(where: { !($0.weight > 0) || !$0.weight.isFinite }) {
                    throw TopologyError(wpath + [.key("values"), .key(model.weights.values[bad].value)],
                                        "a weight must be a positive number (leave a value out to skip its records)")
                }
                if model.factors <= 0 || model.factors > Topology.MatrixFactorization.maxFactors {
                    throw TopologyError(mpath + [.key("factors")], "must be between 1 and \(Topology.MatrixFactorization.maxFactors)")
                }
                if !(model.regularization > 0) || !model.regularization.isFinite { throw TopologyError(mpath + [.key("regularization")], "must be a positive number") }
                if !(model.alpha > 0) || !model.alpha.isFinite { throw TopologyError(mpath + [.key("alpha")], "must be a positive number") }
                if !(model.missingWeight > 0 && model.missingWeight <= 1) {
                    throw TopologyError(mpath + [.key("missing_weight")], "must be a number in (0, 1] (the confidence of an item's 0 where no event was seen)")
                }
                for (name, history) in [("user_history", model.userHistory), ("item_history", model.itemHistory)]
                where history <= 0 || history > Topology.MatrixFactorization.maxHistory {
                    throw TopologyError(mpath + [.key(name)], "must be between 1 and \(Topology.MatrixFactorization.maxHistory)")
                }
                if model.graceMs < 0 { throw TopologyError(mpath + [.key("grace")], "must not be negative") }
                if let ttl = node.stateTTLMs, ttl <= 0 { throw TopologyError(at + [.key("state_ttl")], "must be positive") }
                try checkGroupNames([model.userField, model.itemField], against: ModelOperator.outputs, mpath + [.key("user")])
                stateSchema = .closed([model.userField: .group(0), model.itemField: .group(1), "factors": .output(0, isNumber: false)],
                                      order: [model.userField, model.itemField] + ModelOperator.outputs)
                kind = .model(ModelOperator.Spec(
                    userField: user, itemField: item, weightField: weightField,
                    weights: model.weights.values.map { (Array($0.value.utf8), $0.weight) }, factors: model.factors,
                    regularization: model.regularization, missingWeight: model.missingWeight, alpha: model.alpha, userHistory: model.userHistory,
                    itemHistory: model.itemHistory, graceMs: model.graceMs, userTTLMs: node.stateTTLMs))
            case .aggregate, .recent, .decay:
                let apath = at + [.key(Self.operationKey(node.operation))]
                var refs: [String: OutputRef] = [:]
                var order: [String] = []
                let groupBy = node.operation.groupBy ?? []
                if groupBy.isEmpty { throw TopologyError(apath + [.key("group_by")], "lists no fields") }
                var groupIDs: [Int] = []
                for (j, name) in groupBy.enumerated() {
                    let id = try resolveField(name, apath + [.key("group_by"), .index(j)])
                    groupIDs.append(id)
                    require(id)
                    refs[name] = .group(j)
                    order.append(name)
                }
                var spec = CompiledTopology.Aggregate(index: aggregates.count, name: node.name, groupFields: groupIDs)
                /// The function's outputs, numbered as its `appendOutput` reads them.
                func outputs(_ names: [String], numbers: Set<String>? = nil) throws {
                    try checkGroupNames(groupBy, against: names, apath + [.key("group_by")])
                    for (i, name) in names.enumerated() {
                        refs[name] = .output(i, isNumber: numbers.map { $0.contains(name) } ?? true)
                        order.append(name)
                    }
                }
                func weightTable(_ weights: Topology.Weights) throws -> (Int, [([UInt8], Double)]) {
                    let wpath = apath + [.key("weights")]
                    let field = try resolveField(weights.field, wpath + [.key("field")])
                    if weights.values.isEmpty { throw TopologyError(wpath + [.key("values")], "lists no values") }
                    return (field, weights.values.map { (Array($0.value.utf8), $0.weight) })
                }
                switch node.operation {
                case .aggregate(_, let sums, let weights):
                    for (j, name) in sums.enumerated() {
                        let id = try resolveField(name, apath + [.key("sum"), .index(j)])
                        spec.sumFields.append(id)
                        needNumber(id)
                    }
                    if let weights { (spec.weightField, spec.weights) = try weightTable(weights) }
                    try outputs(SumsFunction.outputs(sums: sums, weighted: weights != nil))
                case .recent(_, let field, let size, let distinct):
                    let id = try resolveField(field, apath + [.key("field")])
                    require(id)
                    if size <= 0 { throw TopologyError(apath + [.key("size")], "must be positive") }
                    spec.function = .recent(field: id, size: size, distinct: distinct)
                    try outputs(RecentFunction.outputs, numbers: ["count"])
                case .decay(_, let weights, let halfLifeMs, let trendHalfLifeMs, let topK):
                    if halfLifeMs <= 0 { throw TopologyError(apath + [.key("half_life")], "must be positive") }
                    if let long = trendHalfLifeMs, long <= halfLifeMs {
                        throw TopologyError(apath + [.key("trend_against")], "must be longer than half_life (\(halfLifeMs / 1000) s): the trend is the short sum against the long one")
                    }
                    (spec.weightField, spec.weights) = try weightTable(weights)
                    if let bad = weights.values.firstIndex(where: { !($0.weight > 0) || !$0.weight.isFinite }) {
                        throw TopologyError(apath + [.key("weights"), .key("values"), .key(weights.values[bad].value)],
                                            "a decayed weight must be a positive number (leave a value out to skip its records)")
                    }
                    spec.function = .decay(halfLifeMs: Double(halfLifeMs), trendHalfLifeMs: trendHalfLifeMs.map(Double.init))
                    if let topK {
                        let tpath = apath + [.key("top_k")]
                        if groupBy.count < 2 {
                            throw TopologyError(apath + [.key("group_by")], "a top_k keeps the best values of the last group field per value of the others: group by at least two fields (e.g. [item_id, other_item])")
                        }
                        if topK.k <= 0 { throw TopologyError(tpath + [.key("k")], "must be positive") }
                        if topK.everyMs <= 0 { throw TopologyError(tpath + [.key("every")], "must be positive") }
                        if topK.graceMs < 0 { throw TopologyError(tpath + [.key("grace")], "must not be negative") }
                        spec.topK = .init(k: topK.k, everyMs: topK.everyMs, graceMs: topK.graceMs, perFields: groupBy.count - 1)
                    }
                    try outputs(DecayFunction.outputs(trend: trendHalfLifeMs != nil))
                default: preconditionFailure("not an aggregate")
                }
                stateSchema = .closed(refs, order: order)
                // Children (a further aggregate) see the rows as records with those fields.
                outSchema = .closed(Dictionary(uniqueKeysWithValues: order.map { ($0, OutputRef.field(fieldID($0))) }), order: order)
                kind = .aggregate(aggregates.count)
                if let rekeyed { spec.repartitionTopic = rekeyed.topic }
                if let ttl = node.stateTTLMs {
                    let tpath = at + [.key("state_ttl")]
                    if ttl <= 0 { throw TopologyError(tpath, "must be positive") }
                    if spec.topK != nil {
                        throw TopologyError(tpath, "a decay with a top_k keeps its groups by epochs of its own (the top_k bounds its state): leave state_ttl out")
                    }
                    if rekeyed != nil {
                        throw TopologyError(tpath, "expires groups of the sub-topology's key, and this node re-keys the stream by [\(groupBy.joined(separator: ", "))]: group by the source key (\(subtopologies[upstream].key.joined(separator: ", "))) to expire per-key state")
                    }
                    spec.stateTTLMs = ttl
                }
                aggregates.append(spec)
            }

            var sinks: [CompiledSink] = []
            let isStateful: Bool = { switch kind { case .aggregate, .session: return true; case .filter, .pass, .join, .pairs, .model: return false } }()
            for (j, var sink) in node.sinks.enumerated() {
                let path: [P] = at + [.key("to_redis"), .index(j)]
                if case .model(var spec) = kind {
                    // One string per user or item: its vector.
                    if sink.kind != .string { throw TopologyError(path + [.key("type")], "a model writes strings (a user's or an item's factors): use type: string") }
                    if let value = sink.value, value != "factors" {
                        throw TopologyError(path + [.key("value")], "a model's sink writes 'factors' (the row's vector), not '\(value)'")
                    }
                    sink.value = "factors"
                    let compiled = try compileSink(sink, schema: stateSchema!, groupBy: nil, path: path, fieldID: fieldID)
                    let named = Set(compiled.key.parts.compactMap { part -> Int? in if case .ref(.group(let g)) = part { return g }; return nil })
                    guard named.count == 1, let side = named.first else {
                        throw TopologyError(path + [.key("key")], "must name exactly one of {\(topology.nodes[i].operation.groupBy![0])} (a user's factors) or {\(topology.nodes[i].operation.groupBy![1])} (an item's)")
                    }
                    if side == 0 { spec.userSinks.append(compiled) } else { spec.itemSinks.append(compiled) }
                    kind = .model(spec)
                    continue
                }
                let compiled = try compileSink(sink, schema: stateSchema ?? outSchema, groupBy: isStateful ? node.operation.groupBy : nil,
                                               namingTheGroup: { if case .session = kind { return SessionOperator.namingTheGroup }; return [] }(),
                                               listValue: { if case .recent = node.operation { return .output(1, isNumber: false) }; return nil }(),
                                               path: path, fieldID: fieldID)
                if case .session = kind { try checkSessionSlot(compiled, path: path) }
                // A zset score taken from the record must be a number, or Redis would
                // reject the commit: such records are dead-lettered instead.
                if compiled.kind == .zset, case .field(let id)? = compiled.value { needNumber(id) }
                sinks.append(compiled)
            }
            var topicSinks: [CompiledTopicSink] = []
            for (j, sink) in node.topicSinks.enumerated() {
                let path: [P] = at + [.key("to_topic"), .index(j)]
                if case .model = kind {
                    throw TopologyError(path, "a model forwards no records: write its factors to Redis")
                }
                if case .aggregate = kind {
                    throw TopologyError(path, "an aggregate forwards no records (its changes are not a stream yet): write it to Redis, or put to_topic on the node that feeds it")
                }
                try checkName(sink.topic, path + [.key("topic")])
                let taken: [(String, String)] = [(source.topic, "the source topic"), (topology.deadLetterTopic, "the dead-letter topic")]
                    + topology.tables.map { ($0.topic, "table \($0.name)'s topic") }
                if let clash = taken.first(where: { $0.0 == sink.topic }) {
                    throw TopologyError(path + [.key("topic")], "'\(sink.topic)' is \(clash.1); an output needs a topic of its own")
                }
                try checkNotInternal(sink.topic, application: topology.application, path + [.key("topic")])
                let key = try sink.key.map { text -> Template in
                    try checkNonEmpty(text, path + [.key("key")])
                    do {
                        return try Template.parse(text) { (name: String) throws(TemplateError) -> OutputRef in
                            guard case .field(let id)? = outSchema.resolve(name, fieldID: fieldID) else {
                                throw TemplateError("field '\(name)' is not available here (available: \(outSchema.available))")
                            }
                            return .field(id)
                        }
                    } catch let error as TemplateError {
                        throw TopologyError(path + [.key("key")], error.message)
                    }
                }
                var fields: [([UInt8], Int)]?
                if let names = sink.fields {
                    if names.isEmpty { throw TopologyError(path + [.key("fields")], "lists no fields (leave it out to write every field)") }
                    fields = try names.enumerated().map { j, name in
                        if names[..<j].contains(name) { throw TopologyError(path + [.key("fields"), .index(j)], "'\(name)' is listed twice") }
                        return (Self.jsonName(name), try resolveOutput(name, path + [.key("fields"), .index(j)]))
                    }
                } else if case .closed(let refs, let order) = outSchema {
                    fields = order.compactMap { name in
                        guard case .field(let id)? = refs[name] else { return nil }
                        return (Self.jsonName(name), id)
                    }
                }
                topicSinks.append(CompiledTopicSink(topic: sink.topic, key: key, fields: fields))
            }
            func resolveOutput(_ name: String, _ path: [P]) throws -> Int {
                try checkNonEmpty(name, path)
                guard case .field(let id)? = outSchema.resolve(name, fieldID: fieldID) else {
                    throw TopologyError(path, "field '\(name)' is not available here (available: \(outSchema.available))")
                }
                return id
            }
            if case .aggregate(let a) = kind {
                aggregates[a].sinks = sinks
                sinks = []
            }
            if case .session(var spec) = kind {
                spec.sinks = sinks
                kind = .session(spec)
                sinks = []
            }
            var compiledNode = CompiledTopology.Node(name: node.name, parent: parent, kind: kind, sinks: sinks, topicSinks: topicSinks, subtopology: subtopology)
            if let rekeyed {
                let groupFields: [Int]
                switch kind {
                case .aggregate(let a): groupFields = aggregates[a].groupFields
                case .session(let spec): groupFields = spec.groupFields
                case .pairs(let spec): groupFields = spec.groupFields
                case .model: groupFields = []  // one partition (RecordRepartitionOperator)
                case .filter, .pass, .join: preconditionFailure("only stateful nodes re-key")
                }
                compiledNode.repartition = .init(kind: rekeyed.kind, topic: rekeyed.topic, index: repartitionCount, upstream: rekeyed.upstream, groupFields: groupFields)
                repartitionCount += 1
            }
            nodes.append(compiledNode)
            schemas.append(outSchema)
            readsSource.append(fromSource)
            oneRecordPerSource.append(isSourceRecord)
            joinedAbove.append(joined)
            indexByName[node.name] = i
        }
        var seen = Set<Int>()
        var outputTopics: [String] = []
        for i in nodes.indices {
            for j in nodes[i].topicSinks.indices {
                let topic = nodes[i].topicSinks[j].topic
                if !outputTopics.contains(topic) { outputTopics.append(topic) }
                nodes[i].topicSinks[j].topicIndex = outputTopics.firstIndex(of: topic)!
            }
        }
        for (i, node) in nodes.enumerated() {
            if case .pairs = node.kind, let id = joinNumeric[i]?.first {
                throw TopologyError([.key("nodes"), .index(i), .key("pairs"), .key("other")], "'\(fields[id])' holds the paired item, a string; a node below uses it as a number")
            }
            guard case .join(var spec) = node.kind else { continue }
            spec.required = spec.fieldIDs.filter { joinRequired[i]?.contains($0) == true }
            spec.numeric = spec.fieldIDs.filter { joinNumeric[i]?.contains($0) == true }
            nodes[i].kind = .join(spec)
        }
        return CompiledTopology(topology: topology, fields: fields, keyField: keyField, timestampField: timestampField,
                                requiredFields: required.filter { seen.insert($0).inserted },
                                numericFields: Array(Set(numeric)).sorted(), nodes: nodes, aggregates: aggregates,
                                stores: try stores(nodes: nodes, aggregates: aggregates, topology: topology, subtopologies: subtopologies),
                                tables: tables, subtopologies: subtopologies,
                                sourceRekey: .init(kind: .sourceRecords, topic: Repartitions.topic(application: topology.application, node: Self.reservedNodeName),
                                                   index: repartitionCount, upstream: 0, groupFields: [keyField]))
    }

    /// What the loop knows of a re-key point before the node's group fields are resolved.
    private struct RepartitionStart {
        let kind: CompiledTopology.RepartitionEdge.Kind
        let topic: String
        let upstream: Int
    }

    /// `<application>-source-repartition` re-keys source records whose Kafka key is not
    /// their key field: no node may take its name.
    static let reservedNodeName = "source"

    /// Eddy's own topics (`<application>-…-changelog`, `-repartition`) and Kafka's
    /// (`__consumer_offsets`, `__transaction_state`) are no tables or outputs.
    private static func checkNotInternal(_ topic: String, application: String, _ path: [TopologyError.PathComponent]) throws {
        if topic.hasPrefix("__") { throw TopologyError(path, "'\(topic)' is one of the broker's internal topics (names starting with '__')") }
        if topic.hasPrefix("\(application)-"), topic.hasSuffix("-changelog") || topic.hasSuffix("-repartition") {
            throw TopologyError(path, "'\(topic)' is named like one of Eddy's internal topics")
        }
    }

    /// `"name":` as JSON (the name escaped), to write a field into a record.
    static func jsonName(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        appendJSONString(Array(name.utf8)[...], to: &out)
        out.append(UInt8(ascii: ":"))
        return out
    }

    /// A stateful node's rows name their group fields and outputs alike: a group field may
    /// not be named like an output, or listed twice.
    private static func checkGroupNames(_ groupBy: [String], against outputs: [String], _ path: [TopologyError.PathComponent]) throws {
        for (j, name) in groupBy.enumerated() {
            if outputs.contains(name) {
                throw TopologyError(path + [.index(j)], "'\(name)' is also the name of one of this node's outputs (\(outputs.joined(separator: ", "))): its rows could not tell them apart")
            }
            if groupBy[..<j].contains(name) { throw TopologyError(path + [.index(j)], "'\(name)' is listed twice") }
        }
    }

    /// The operation's key in a topology file, for error paths and messages.
    private static func operationKey(_ operation: Topology.Operation) -> String {
        switch operation {
        case .filter: return "filter"
        case .project: return "project"
        case .aggregate: return "aggregate"
        case .recent: return "recent"
        case .decay: return "decay"
        case .session: return "session"
        case .join: return "join"
        case .pairs: return "pairs"
        case .model: return "model"
        case .passthrough: return "passthrough"
        }
    }

    /// The most items a `pairs` node keeps per group: a record forwards two records per item.
    static let maxPairsLast = 1_000

    /// The stores of every task, with names that must not collide (they name changelog topics).
    private static func stores(nodes: [CompiledTopology.Node], aggregates: [CompiledTopology.Aggregate], topology: Topology,
                               subtopologies: [CompiledTopology.Subtopology]) throws -> [CompiledTopology.Store] {
        var stores: [CompiledTopology.Store] = []
        var owner: [String: Int] = [:]  // store name -> node index
        func add(_ name: String, _ role: CompiledTopology.Store.Role, node: Int, subtopology: Int? = nil) throws {
            if let other = owner[name] {
                throw TopologyError([.key("nodes"), .index(node), .key("name")],
                                    "'\(topology.nodes[node].name)' needs a store named '\(name)', which node '\(topology.nodes[other].name)' also needs (both would write the changelog \(Changelogs.topic(application: topology.application, store: name))): rename one")
            }
            owner[name] = node
            stores.append(.init(index: stores.count, name: name, role: role, subtopology: subtopology ?? nodes[node].subtopology))
        }
        /// Per sub-topology, the first node that schedules timers (or needs its stream time kept).
        var usesTimers: [Int: Int] = [:]
        for (i, node) in nodes.enumerated() {
            switch node.kind {
            case .aggregate(let a):
                if aggregates[a].topK != nil {
                    // Its own name: the store's layout and partitioning differ from a plain
                    // decay's, so a decay given a top K starts afresh rather than misreading.
                    try add("\(aggregates[a].name)-topk", .aggregate(a), node: i)
                    // Epochs close on timers; and the tasks that judge its records late (the
                    // upstream's, when it re-keys) keep their stream time across restarts,
                    // or a record skipped as late could count after a restart.
                    usesTimers[node.subtopology] = usesTimers[node.subtopology] ?? i
                    if let upstream = node.repartition?.upstream { usesTimers[upstream] = usesTimers[upstream] ?? i }
                } else {
                    try add(aggregates[a].name, .aggregate(a), node: i)
                    // Idle groups leave on timers.
                    if aggregates[a].stateTTLMs != nil { usesTimers[node.subtopology] = usesTimers[node.subtopology] ?? i }
                }
            case .session:
                try add(node.name, .keyValue(node: i), node: i)
                usesTimers[node.subtopology] = usesTimers[node.subtopology] ?? i
            case .pairs(let spec):
                try add(node.name, .keyValue(node: i), node: i)
                if spec.withinMs != nil { usesTimers[node.subtopology] = usesTimers[node.subtopology] ?? i }
            case .model:
                try add(node.name, .keyValue(node: i), node: i)
                // Records wait on timers; the upstream tasks judge lateness by their stream
                // time, which must survive their restarts (as for a top K).
                usesTimers[node.subtopology] = usesTimers[node.subtopology] ?? i
                if let upstream = node.repartition?.upstream { usesTimers[upstream] = usesTimers[upstream] ?? i }
            case .filter, .pass, .join:
                break
            }
            if node.repartition != nil { try add("\(node.name)-intake", .intake(node: i), node: i) }
        }
        // The source's tasks' intake of re-keyed source records.
        if let other = owner["source-intake"] {
            throw TopologyError([.key("nodes"), .index(other), .key("name")], "the store 'source-intake' keeps the source's re-keyed records (\(Changelogs.topic(application: topology.application, store: "source-intake"))): rename this node")
        }
        owner["source-intake"] = -1
        stores.append(.init(index: stores.count, name: "source-intake", role: .intake(node: -1), subtopology: 0))
        for (s, node) in usesTimers.sorted(by: { $0.key < $1.key }) {
            // Sub-topology 0's keeps the name it had before sub-topologies (its changelog).
            try add(s == 0 ? "timers" : "\(topology.nodes[subtopologies[s].rekeyNode!].name)-timers", .timers, node: node, subtopology: s)
        }
        return stores
    }

    /// A session's sink must name the session, not only its group: `{session_id}` or
    /// `{start}` in its key or field.
    private static func checkSessionSlot(_ sink: CompiledSink, path: [TopologyError.PathComponent]) throws {
        let outputs = Set((sink.key.parts + (sink.field?.parts ?? [])).compactMap { part -> String? in
            if case .ref(.output(let i, _)) = part { return SessionOperator.outputs[i].name }
            return nil
        })
        if outputs.isDisjoint(with: ["session_id", "start"]) {
            throw TopologyError(path + [.key("key")], "names no {session_id}: a group's sessions would overwrite each other in Redis (e.g. key: \"session:{session_id}:features\")")
        }
    }

    /// `groupBy`: the aggregate's group fields, nil for a sink written per record.
    /// `namingTheGroup`: outputs that name every group field (a session's id).
    /// `listValue`: the output a list sink writes (a `recent` node's values), nil where none can.
    private static func compileSink(_ sink: Topology.RedisSink, schema: Schema, groupBy: [String]?, namingTheGroup: Set<Int> = [],
                                    listValue: OutputRef? = nil,
                                    path: [TopologyError.PathComponent], fieldID: (String) -> Int) throws -> CompiledSink {
        let isAggregate = groupBy != nil
        func template(_ text: String, _ key: String) throws -> Template {
            do {
                return try Template.parse(text) { (name: String) throws(TemplateError) -> OutputRef in
                    guard let ref = schema.resolve(name, fieldID: fieldID) else {
                        throw TemplateError("field '\(name)' is not available here (available: \(schema.available))")
                    }
                    return ref
                }
            } catch {
                throw TopologyError(path + [.key(key)], error.message)
            }
        }
        try checkNonEmpty(sink.key, path + [.key("key")])
        let key = try template(sink.key, "key")
        let field = try sink.field.map { try template($0, "field") }
        if sink.kind == .zset, field == nil {
            throw TopologyError(path + [.key("field")], "a zset sink needs 'field' (the member template)")
        }
        if sink.kind == .string || sink.kind == .list, sink.field != nil {
            throw TopologyError(path + [.key("field")], "a \(sink.kind.rawValue) sink has no field")
        }
        if sink.kind == .list {
            // The values of a `recent` node, not a text: one list element per value.
            guard let listValue else {
                throw TopologyError(path + [.key("type")], "a list sink writes the values of a 'recent' node; this node has none")
            }
            if let name = sink.value, name != "recent" {
                throw TopologyError(path + [.key("value")], "a list sink writes the node's 'recent' values, not '\(name)'")
            }
            if let ttl = sink.ttlSeconds, ttl <= 0 { throw TopologyError(path + [.key("ttl")], "must be positive") }
            return CompiledSink(kind: .list, key: key, field: nil, value: listValue, outputs: [], ttlSeconds: sink.ttlSeconds)
        }
        let parts = key.parts + (field?.parts ?? [])
        let groupNamed = parts.contains { if case .ref(.output(let i, _)) = $0 { return namingTheGroup.contains(i) }; return false }
        if let groupBy, !groupNamed {
            // One Redis slot per group: key and field (member) together must name every group
            // field, or groups that differ only in the missing one overwrite each other.
            let named = Set((key.parts + (field?.parts ?? [])).compactMap { part -> Int? in
                if case .ref(.group(let j)) = part { return j }
                return nil
            })
            if let missing = groupBy.indices.first(where: { !named.contains($0) }) {
                let slot = sink.kind == .string ? "'key'" : "'key' or '\(sink.kind == .zset ? "member" : "field")'"
                throw TopologyError(path + [.key("key")], "names no {\(groupBy[missing])}: groups that differ only in \(groupBy[missing]) would overwrite each other in Redis (put {\(groupBy[missing])} in \(slot))")
            }
        }
        if let ttl = sink.ttlSeconds, ttl <= 0 {
            throw TopologyError(path + [.key("ttl")], "must be positive")
        }
        let valueName = sink.value ?? (isAggregate ? "count" : nil)
        var outputs: [([UInt8], OutputRef)] = []
        if sink.kind == .hash, field == nil {
            guard case .closed(let refs, let order) = schema else {
                throw TopologyError(path + [.key("field")], "a hash sink on raw records needs 'field' and 'value', or a 'project' before it naming the fields to write")
            }
            let groupNames = Set(order.filter { if case .group = refs[$0] { return true }; return false })
            outputs = order.filter { !groupNames.contains($0) }.map { (Array($0.utf8), refs[$0]!) }
            if sink.value != nil {
                throw TopologyError(path + [.key("value")], "a hash sink without 'field' writes every output field; 'value' needs 'field'")
            }
            return CompiledSink(kind: .hash, key: key, field: nil, value: nil, outputs: outputs, ttlSeconds: sink.ttlSeconds)
        }
        guard let valueName else {
            throw TopologyError(path + [.key("value")], "name the field to write ('value')")
        }
        guard let value = schema.resolve(valueName, fieldID: fieldID) else {
            throw TopologyError(path + [.key("value")], "field '\(valueName)' is not available here (available: \(schema.available))")
        }
        if sink.kind == .zset, isAggregate, !value.isNumber {
            throw TopologyError(path + [.key("value")], "a zset score must be a number (count, sum_*, weighted_count, score, last_time or rank)")
        }
        return CompiledSink(kind: sink.kind, key: key, field: field, value: value, outputs: outputs, ttlSeconds: sink.ttlSeconds)
    }

    private static func checkNonEmpty(_ s: String, _ path: [TopologyError.PathComponent]) throws {
        if s.isEmpty { throw TopologyError(path, "must not be empty") }
    }

    /// Names become topic, group and column-family names: keep them to a safe alphabet.
    private static func checkName(_ s: String, _ path: [TopologyError.PathComponent]) throws {
        try checkNonEmpty(s, path)
        let ok = s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic && $0.isASCII || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0) }
        if !ok { throw TopologyError(path, "'\(s)' may contain only ASCII letters, digits, '-', '_' and '.'") }
    }
}
