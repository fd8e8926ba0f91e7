/// The sending half of a source task's re-keying (`CompiledTopology.sourceRekey`): source
/// records whose Kafka key is not their key field's value (or that have none), held until
/// the commit sends them to `<application>-source-repartition`, keyed by that value, to the
/// partition Kafka's default partitioner gives it — where the records produced keyed by it
/// are. The task of that source partition reads the partition back and processes them as
/// its own (`StreamTask.receiveRekeyed`).
final class SourceRekeyOutput: RepartitionOutput {
    let edge: CompiledTopology.RepartitionEdge
    private var records = KeyedRecordBuffer()
    private var value: [UInt8] = []

    init(edge: CompiledTopology.RepartitionEdge) { self.edge = edge }

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

    func clear() { records.removeAll() }
}
