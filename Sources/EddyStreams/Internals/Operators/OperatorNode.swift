/// A record flowing between operators: a JSON value, decoded into `fields`' slots.
///
/// Source records are decoded once by the thread's decoder; an operator that emits records
/// of its own (a closed session) encodes them as JSON and decodes them with a decoder of its
/// own, so every operator reads every record the same way, by field id.
struct Record {
    let value: UnsafeRawBufferPointer
    let fields: RecordDecoder
    /// Event time in epoch milliseconds.
    let timestamp: Int64
    /// The input offset the record came from (an emitted record: the offset of the record
    /// whose processing emitted it): arrival order, for ties in event time.
    let offset: Int64
    /// An aggregate's row taken back (its values before a change): a further aggregate
    /// subtracts it (Kafka Streams' subtractor in KTable.groupBy().aggregate()).
    var retraction = false
}

/// One node of a running topology in one task (Kafka Streams' `Processor`): it processes a
/// record, forwards zero, one or many records to its children, reads and writes its stores,
/// schedules event-time timers and reacts when they fire, and renders its state changes as
/// absolute Redis commands at commit.
///
/// Each operator is one subclass; the task builds its instances from the compiled topology
/// (`CompiledTopology.Node.makeOperator`) and drives them from one thread, so none needs
/// locks. A class, not a protocol: the per-record calls are vtable calls on a final layout,
/// and `forward` is shared.
class OperatorNode {
    /// The node's number in the compiled topology (timers are keyed by it).
    let index: Int
    /// Written for every record this node forwards (sinks of stateless nodes).
    let recordSinks: [CompiledSink]
    /// Output topics written for every record this node forwards (set by the factory).
    var topicSinks: [CompiledTopicSink] = []
    private(set) var children: [OperatorNode] = []

    init(index: Int, recordSinks: [CompiledSink]) {
        self.index = index
        self.recordSinks = recordSinks
    }

    final func add(child: OperatorNode) { children.append(child) }

    /// Processes one record that reached this node.
    func process(_ record: Record, in task: StreamTask) throws {
        fatalError("\(type(of: self)) does not process records")
    }

    /// A timer this node scheduled came due: stream time passed `time`.
    func timerFired(key: [UInt8], at time: Int64, in task: StreamTask) throws {}

    /// After a restore: keys of `store` that the changelog holds newer than Redis, so the
    /// next commit renders them.
    func restored(staleKeys: [[UInt8]], of store: any StateStore) throws {}

    /// The node's stores in this task (their changes go to the changelog at commit).
    var stores: [any StateStore] { [] }

    /// Puts what the node keeps outside its stores into them: called at each commit attempt,
    /// before the stores' changes are sent.
    func prepareCommit() throws {}

    /// Renders the state changes since the last commit (or, with `wholeState`, the whole
    /// state) as absolute Redis commands.
    func renderView(into view: inout RedisViewWriter, wholeState: Bool) throws {}

    /// Called once the commit that rendered the view is durable.
    func committed() {}

    /// Passes `record` on: the node's per-record sinks and output topics, then its children.
    @inline(__always)
    final func forward(_ record: Record, in task: StreamTask) throws {
        if !recordSinks.isEmpty { task.collectSinkWrites(recordSinks, record) }
        if !topicSinks.isEmpty { task.collectTopicWrites(topicSinks, record) }
        for child in children { try child.process(record, in: task) }
    }
}
