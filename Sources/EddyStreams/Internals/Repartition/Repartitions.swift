/// The repartition topics of a topology's re-key points, `<application>-<node>-repartition`,
/// with the source's partition count. Tasks of the upstream sub-topology send there at each
/// commit (partials or records, `RepartitionOutput`), to the partition that owns the group
/// key; the tasks of the node's sub-topology, one per partition, read it.
enum Repartitions: InternalTopics {
    static func topic(application: String, node: String) -> String { "\(application)-\(node)-repartition" }

    /// Records are needed until the downstream task has committed past them, however long
    /// that takes: no time limit; the stream threads delete them once committed past
    /// (`RepartitionPurge`).
    static let topicConfigs = ["cleanup.policy": "delete", "retention.ms": "-1"]

    static func topics(of topology: CompiledTopology) -> [String] { topology.repartitionEdges.map(\.topic) }

    /// The partition owning a group key: FNV-1a of its bytes, the same in every process.
    static func partition(of key: [UInt8], count: Int) -> Int32 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int32(hash % UInt64(count))
    }
}
