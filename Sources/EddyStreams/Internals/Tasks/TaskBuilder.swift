import EddyKafka
import EddyState

/// Which stores the task of a partition has, and how its operators are built over them
/// (Kafka Streams' task creator): the same for a stream thread and a test driver.
struct TaskBuilder {
    let topology: CompiledTopology
    let database: StateDatabase
    let usesMarkers: Bool
    let deadLetters: DeadLetterQueue
    let metrics: StreamsMetrics
    /// The thread's copies of the global tables (joins read them).
    let globalTables: [GlobalTable]
    private let changelogTopics: [String]

    init(topology: CompiledTopology, database: StateDatabase, usesMarkers: Bool, deadLetters: DeadLetterQueue, metrics: StreamsMetrics,
         globalTables: [GlobalTable]) {
        self.topology = topology
        self.globalTables = globalTables
        self.database = database
        self.usesMarkers = usesMarkers
        self.deadLetters = deadLetters
        self.metrics = metrics
        changelogTopics = Changelogs.topics(of: topology)
    }

    var sourceTopic: String { topology.topology.source.topic }

    /// The stores of the task of `tp`: a source partition's, or those of the re-keyed
    /// aggregate a repartition partition feeds (its intake keeps bookkeeping only under
    /// exactly-once).
    func stores(of tp: TopicPartition) -> [CompiledTopology.Store] {
        guard tp.topic != sourceTopic else { return topology.stores.filter { $0.repartitionTopic == nil } }
        return topology.stores.filter { store in
            if case .intake = store.role, !usesMarkers { return false }
            return store.repartitionTopic == tp.topic
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

    /// Builds the task of `tp` over its stores, which must be restored already (a store
    /// learns at creation whether its column family is empty).
    func build(_ tp: TopicPartition, nextOffset: Int64, committedOffset: Int64?) throws -> StreamTask {
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
                if spec.repartitionTopic != nil { try refuseOldIntakeKeys(in: columnFamily) }
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
        var operators = [OperatorNode?](repeating: nil, count: topology.nodes.count)
        var roots: [OperatorNode] = []
        var intake: RepartitionIntake?
        if tp.topic == sourceTopic {
            for aggregate in topology.aggregates where aggregate.repartitionTopic != nil { tables[aggregate.index] = AggregateTable(combining: aggregate) }
            let environment = OperatorEnvironment(topology: topology, tables: tables, keyValueStores: keyValueStores, timers: timers,
                                                  globalTables: globalTables, metrics: metrics)
            for (i, node) in topology.nodes.enumerated() {
                let op = node.makeOperator(index: i, in: environment)
                operators[i] = op
                if node.parent < 0 { roots.append(op) } else { operators[node.parent]!.add(child: op) }
            }
        } else {
            // The re-keyed aggregate's downstream half: its store, fed by the intake.
            let aggregate = topology.aggregates.first { $0.repartitionTopic == tp.topic }!
            let i = topology.nodes.firstIndex { if case .aggregate(aggregate.index) = $0.kind { return true }; return false }!
            let environment = OperatorEnvironment(topology: topology, tables: tables, keyValueStores: [:], timers: nil,
                                                  globalTables: globalTables, metrics: metrics)
            operators[i] = topology.nodes[i].makeOperator(index: i, in: environment)
            let created = RepartitionIntake(table: tables[aggregate.index]!, store: intakeStore, usesMarkers: usesMarkers)
            created.load()
            intake = created
        }
        return StreamTask(partition: tp, operators: operators, roots: roots, stores: stores, intake: intake, timers: timers,
                          topology: topology, deadLetters: deadLetters, metrics: metrics, nextOffset: nextOffset, committedOffset: committedOffset)
    }
}
