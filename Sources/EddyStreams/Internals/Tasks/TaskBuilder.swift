import EddyKafka
import EddyState

/// Which stores the task of a partition has, and how its operators are built over them
/// (Kafka Streams' task creator): the same for a stream thread and a test driver.
struct TaskBuilder {
    let topology: CompiledTopology
    let database: StateDatabase
    let usesMarkers: Bool
    /// Partitions of every topic a task reads (source and repartition topics alike).
    let partitionCount: Int
    let deadLetters: DeadLetterQueue
    let metrics: StreamsMetrics
    /// The thread's copies of the global tables (joins read them).
    let globalTables: [GlobalTable]
    private let changelogTopics: [String]

    init(topology: CompiledTopology, database: StateDatabase, usesMarkers: Bool, partitionCount: Int, deadLetters: DeadLetterQueue, metrics: StreamsMetrics,
         globalTables: [GlobalTable]) {
        self.topology = topology
        self.globalTables = globalTables
        self.database = database
        self.usesMarkers = usesMarkers
        self.partitionCount = partitionCount
        self.deadLetters = deadLetters
        self.metrics = metrics
        changelogTopics = Changelogs.topics(of: topology)
    }

    var sourceTopic: String { topology.topology.source.topic }

    /// The stores of the task of `tp`: those of the sub-topology reading its topic (an
    /// intake keeps bookkeeping only under exactly-once).
    func stores(of tp: TopicPartition) -> [CompiledTopology.Store] {
        guard let s = topology.subtopology(reading: tp.topic) else { return [] }
        return topology.stores.filter { store in
            if case .intake = store.role, !usesMarkers { return false }
            return store.subtopology == s
        }
    }

    func changelog(of store: CompiledTopology.Store, partition: Int32) -> InternalPartition {
        InternalPartition(store: store.index, topic: changelogTopics[store.index], partition: partition)
    }

    func columnFamily(of store: CompiledTopology.Store, partition: Int32) throws -> ColumnFamily {
        try database.columnFamily(store.columnFamilyName(partition: partition))
    }

    /// Eddy before the operator layer kept a re-keyed aggregate's intake bookkeeping in the
    /// aggregate's own store (keys starting FF FF FF FF, which no group key can); such state
    /// cannot be read as groups, and its pending attempts are not where the intake looks.
    private func refuseOldIntakeKeys(in columnFamily: ColumnFamily) throws {
        var found = false
        database.forEach(columnFamily, from: IntakeKeys.prefix) { key, _ in
            found = key.starts(with: IntakeKeys.prefix)
            return false
        }
        if found {
            throw RuntimeError("\(columnFamily.name) (or its changelog) was written by an Eddy older than the operator layer, which kept the repartition intake's bookkeeping there: run `eddy reset TOPOLOGY --to-earliest` for application \(topology.topology.application) and replay")
        }
    }

    /// The partition of the source repartition topic that the task of source partition
    /// `tp` reads (nil: `tp` is no source partition).
    func rekeyedPartner(of tp: TopicPartition) -> TopicPartition? {
        tp.topic == sourceTopic ? TopicPartition(topology.sourceRekey.topic, tp.partition) : nil
    }

    /// Builds the task of `tp` over its stores, which must be restored already (a store
    /// learns at creation whether its column family is empty): the nodes of its
    /// sub-topology, and the upstream halves of the nodes it feeds through repartition
    /// topics. A source task also re-keys: `rekeyedNextOffset` is where it reads its
    /// partition of the source repartition topic.
    func build(_ tp: TopicPartition, nextOffset: Int64, rekeyedNextOffset: Int64 = 0, committedOffset: Int64?) throws -> StreamTask {
        guard let s = topology.subtopology(reading: tp.topic) else { throw RuntimeError("\(tp.topic) is not an input of this topology") }
        var tables: [Int: AggregateTable] = [:]
        var keyValueStores: [Int: KeyValueStore] = [:]
        var stores: [(store: any StateStore, changelog: InternalPartition)] = []
        var timers: TaskTimers?
        var intakeStore: KeyValueStore?
        for spec in self.stores(of: tp) {
            let columnFamily = try columnFamily(of: spec, partition: tp.partition)
            let store: any StateStore
            switch spec.role {
            case .aggregate(let a):
                if topology.aggregates[a].repartitionTopic != nil { try refuseOldIntakeKeys(in: columnFamily) }
                let table = AggregateTable(spec: topology.aggregates[a], columnFamily: columnFamily, database: database)
                tables[a] = table
                store = table
            case .intake:
                let kv = KeyValueStore(name: spec.name, columnFamily: columnFamily, database: database)
                intakeStore = kv
                store = kv
            case .keyValue(let node):
                let kv = KeyValueStore(name: spec.name, columnFamily: columnFamily, database: database)
                keyValueStores[node] = kv
                store = kv
            case .timers:
                let kv = KeyValueStore(name: spec.name, columnFamily: columnFamily, database: database)
                timers = TaskTimers(store: kv)
                store = kv
            }
            stores.append((store, changelog(of: spec, partition: tp.partition)))
        }
        // Re-keying aggregates fed from here: their combiners.
        for (node, edge) in topology.repartitions where edge.upstream == s && edge.kind == .partials {
            guard case .aggregate(let a) = topology.nodes[node].kind else { continue }
            tables[a] = AggregateTable(combining: topology.aggregates[a])
        }
        let environment = OperatorEnvironment(topology: topology, tables: tables, keyValueStores: keyValueStores, timers: timers,
                                              globalTables: globalTables, metrics: metrics)
        var operators = [OperatorNode?](repeating: nil, count: topology.nodes.count)
        var roots: [OperatorNode] = []
        var outputs: [any RepartitionOutput] = []
        for (i, node) in topology.nodes.enumerated() {
            let op: OperatorNode
            if let edge = node.repartition, edge.upstream == s {
                // The upstream half of a node that re-keys: what is sent to its topic.
                switch edge.kind {
                case .partials:
                    let combiner = node.makeOperator(index: i, in: environment) as! AggregateOperator
                    outputs.append(combiner.output(edge))
                    op = combiner
                case .records:
                    let sender = RecordRepartitionOperator(index: i, edge: edge)
                    outputs.append(sender)
                    op = sender
                case .sourceRecords:
                    preconditionFailure("no node re-keys to the source repartition topic")
                }
            } else if node.subtopology == s {
                op = node.makeOperator(index: i, in: environment)
            } else {
                continue
            }
            operators[i] = op
            if node.subtopology == s && node.repartition != nil || node.parent < 0 {
                roots.append(op)  // the sub-topology's first node, or a child of the source
            } else {
                operators[node.parent]!.add(child: op)
            }
        }
        var intake: (RepartitionIntake, CompiledTopology.RepartitionEdge.Kind)?
        var rekey: (output: SourceRekeyOutput, intake: RepartitionIntake, partition: TopicPartition, nextOffset: Int64)?
        // A repartition task's intake, or a source task's for records re-keyed to it.
        let reading = RepartitionIntake(store: intakeStore, usesMarkers: usesMarkers, upstreams: partitionCount)
        reading.load()
        if let first = topology.subtopologies[s].rekeyNode, let edge = topology.nodes[first].repartition {
            intake = (reading, edge.kind)
        } else if let partner = rekeyedPartner(of: tp) {
            let output = SourceRekeyOutput(edge: topology.sourceRekey)
            outputs.append(output)
            rekey = (output, reading, partner, rekeyedNextOffset)
        }
        return StreamTask(partition: tp, operators: operators, roots: roots, outputs: outputs, stores: stores, intake: intake, rekey: rekey, timers: timers,
                          topology: topology, deadLetters: deadLetters, metrics: metrics, nextOffset: nextOffset, committedOffset: committedOffset)
    }
}
