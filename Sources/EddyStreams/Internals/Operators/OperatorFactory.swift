/// What a task hands the operators it builds: its stores and timers.
struct OperatorEnvironment {
    let topology: CompiledTopology
    /// Per aggregate: its store, or its combiner in a source task when it re-keys.
    let tables: [Int: AggregateTable]
    /// Per node: its key-value store.
    let keyValueStores: [Int: KeyValueStore]
    let timers: TaskTimers?
    /// The thread's copies of the global tables, in `CompiledTopology.tables` order.
    let globalTables: [GlobalTable]
    let metrics: StreamsMetrics
}

extension CompiledTopology.Node {
    /// The operator of a compiled node in one task: the one place a node's kind picks its
    /// operator class.
    func makeOperator(index: Int, in environment: OperatorEnvironment) -> OperatorNode {
        let op = makeOperatorOfKind(index: index, in: environment)
        op.topicSinks = topicSinks
        return op
    }

    private func makeOperatorOfKind(index: Int, in environment: OperatorEnvironment) -> OperatorNode {
        switch kind {
        case .filter(let field, let condition): return FilterOperator(index: index, field: field, condition: condition, recordSinks: sinks)
        case .pass: return PassOperator(index: index, recordSinks: sinks)
        case .join(let spec):
            return JoinOperator(index: index, spec: spec, table: environment.globalTables[spec.table], topology: environment.topology,
                                metrics: environment.metrics, recordSinks: sinks)
        case .aggregate(let a): return AggregateOperator(index: index, table: environment.tables[a]!, timers: environment.timers, topology: environment.topology)
        case .pairs(let spec):
            return PairsOperator(index: index, spec: spec, store: environment.keyValueStores[index]!, timers: environment.timers,
                                 topology: environment.topology, recordSinks: sinks)
        case .model(let spec):
            return ModelOperator(index: index, spec: spec, store: environment.keyValueStores[index]!, timers: environment.timers!)
        case .session(let spec):
            return SessionOperator(index: index, spec: spec, store: environment.keyValueStores[index]!, timers: environment.timers!, topology: environment.topology)
        }
    }
}
