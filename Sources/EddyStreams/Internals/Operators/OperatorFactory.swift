/// What a task hands the operators it builds: its stores and timers.
struct OperatorEnvironment {
    let topology: CompiledTopology
    /// Per aggregate: its store, or its combiner in a source task when it re-keys.
    let tables: [Int: AggregateTable]
    /// Per node: its key-value store.
    let keyValueStores: [Int: KeyValueStore]
    let timers: TaskTimers?
}

extension CompiledTopology.Node {
    /// The operator of a compiled node in one task: the one place a node's kind picks its
    /// operator class.
    func makeOperator(index: Int, in environment: OperatorEnvironment) -> OperatorNode {
        switch kind {
        case .filter(let field, let condition): return FilterOperator(index: index, field: field, condition: condition, recordSinks: sinks)
        case .pass: return PassOperator(index: index, recordSinks: sinks)
        case .aggregate(let a): return AggregateOperator(index: index, table: environment.tables[a]!)
        case .session(let spec):
            return SessionOperator(index: index, spec: spec, store: environment.keyValueStores[index]!, timers: environment.timers!, topology: environment.topology)
        }
    }
}
