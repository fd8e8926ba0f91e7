/// What a task sends to one repartition topic at each commit (the upstream half of a node
/// that re-keys): a combiner's partials, or the records themselves. `TaskCommitter` sends
/// every record to the partition owning its key and an empty record to every other
/// partition, so each committed attempt reaches every downstream task (`RepartitionIntake`);
/// after the commit the output is cleared, and a failed attempt sends it again.
protocol RepartitionOutput: AnyObject {
    var edge: CompiledTopology.RepartitionEdge { get }
    /// Nothing to send since the last commit.
    var isEmpty: Bool { get }
    /// Bytes of records held until the commit: past `TopicRecord.pendingBytesLimit` (with
    /// output topics' records) the thread commits early.
    var pendingBytes: Int { get }
    /// Each record to send: its key (the node's group key) and value.
    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void) rethrows
    /// Forgets what was sent, once the attempt carrying it committed.
    func clear()
    /// The partition of the topic that owns `key`.
    func partition(of key: [UInt8], count: Int) -> Int32
}

extension RepartitionOutput {
    /// A group key's partition: `Repartitions.partition(of:count:)`.
    func partition(of key: [UInt8], count: Int) -> Int32 { Repartitions.partition(of: key, count: count) }
}

/// A record crossing a repartition topic: the JSON the re-keying node would have
/// processed upstream, with what is not in its JSON — its event time, whether it takes an
/// aggregate's row back, and the stream time it was judged by upstream (what the
/// downstream node judges its lateness by, so a replay, whose upstream tasks interleave
/// differently, judges it the same). Value layout: flags (1 byte: bit 0, retraction), event
/// time, upstream stream time (Int64s, little-endian), the JSON.
enum RepartitionedRecord {
    static let headerBytes = 17

    static func encode(_ record: Record, streamTime: Int64, into out: inout [UInt8]) {
        encode(json: record.value, timestamp: record.timestamp, streamTime: streamTime, retraction: record.retraction, into: &out)
    }

    static func encode(json: UnsafeRawBufferPointer, timestamp: Int64, streamTime: Int64, retraction: Bool = false, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.append(retraction ? 1 : 0)
        withUnsafeBytes(of: timestamp.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: streamTime.littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json.bindMemory(to: UInt8.self))
    }

    /// The parts of an encoded value; nil when it is too short to be one.
    static func decode(_ value: UnsafeRawBufferPointer) -> (retraction: Bool, timestamp: Int64, streamTime: Int64, json: UnsafeRawBufferPointer)? {
        guard value.count > headerBytes else { return nil }
        let time = Int64(littleEndian: value.loadUnaligned(fromByteOffset: 1, as: Int64.self))
        let streamTime = Int64(littleEndian: value.loadUnaligned(fromByteOffset: 9, as: Int64.self))
        return (value[0] & 1 != 0, time, streamTime, UnsafeRawBufferPointer(rebasing: value[headerBytes...]))
    }
}

extension CompiledTopology.RepartitionEdge {
    /// Partition `q` of the topic, as the producer tags it.
    func partition(_ q: Int32) -> InternalPartition {
        InternalPartition(store: index, topic: topic, partition: q, isRepartition: true)
    }
}
