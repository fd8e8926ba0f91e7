/// The sending half of a source task's re-keying (`CompiledTopology.sourceRekey`): source
/// records whose Kafka key is not their key field's value (or that have none), held until
/// the commit sends them to `<application>-source-repartition`, keyed by that value, to the
/// partition Kafka's default partitioner gives it — where the records produced keyed by it
/// are. The task of that source partition reads the partition back and processes them as
/// its own (`StreamTask.receiveRekeyed`).
///
/// Unlike a node's output it sends nothing at a commit that has nothing for it: every source
/// task reads this topic, so an empty record to every partition at every commit would make
/// every task commit again, forever. The range of an attempt that sends therefore starts
/// where the last attempt that sent ended (`since`), so each reader still sees an unbroken
/// chain of ranges per upstream task (`RepartitionIntake`).
final class SourceRekeyOutput: RepartitionOutput {
    let edge: CompiledTopology.RepartitionEdge
    private var records = KeyedRecordBuffer()
    private var value: [UInt8] = []
    /// The task's position after the last commit that sent records (the next range's start).
    private(set) var since: Int64

    init(edge: CompiledTopology.RepartitionEdge, since: Int64) {
        self.edge = edge
        self.since = since
    }

    /// Holds one source record: its key field's value, its JSON and event time, and the
    /// task's stream time.
    func add(key: [UInt8], json: UnsafeRawBufferPointer, timestamp: Int64, streamTime: Int64) {
        RepartitionedRecord.encode(json: json, timestamp: timestamp, streamTime: streamTime, into: &value)
        records.append(key: key, value: value)
    }

    var isEmpty: Bool { records.isEmpty }
    var pendingBytes: Int { records.byteCount }

    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void) rethrows {
        try records.forEach(body)
    }

    func partition(of key: [UInt8], count: Int) -> Int32 { KafkaKeyPartitioner.partition(of: key, count: count) }

    /// The attempt committed with the task at `position`: what it sent is delivered.
    func committed(at position: Int64) {
        if !records.isEmpty { since = position }
        records.removeAll()
    }

    func clear() { records.removeAll() }
}
