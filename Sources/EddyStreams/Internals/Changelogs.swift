/// The changelog topics of a topology's stores, `<application>-<store>-changelog`, one
/// partition per input partition (task). Local RocksDB state is a cache of them.
enum Changelogs: InternalTopics {
    /// Compacted: restore needs only the latest value per key; markers are keyed so that
    /// one per producer life stays (`StreamProducer.writeMarkerIfOwed`). (A broker that
    /// compacts without removing aborted records could keep an aborted value over a
    /// committed one.)
    static let topicConfigs = ["cleanup.policy": "compact"]

    static func topic(application: String, store: String) -> String { "\(application)-\(store)-changelog" }

    /// One topic per store, in the topology's store order.
    static func topics(of topology: CompiledTopology) -> [String] {
        topology.stores.map { topic(application: topology.topology.application, store: $0.name) }
    }

    /// RocksDB key of a changelog partition's checkpoint: the changelog offset the local
    /// store is restored up to.
    static func checkpointKey(_ changelog: InternalPartition) -> [UInt8] {
        Array("changelog:\(changelog.topic):\(changelog.partition)".utf8)
    }

    /// RocksDB key of the committed attempts a changelog partition still owes a marker for,
    /// written with the state: a restart that needs no restore still writes them.
    static func owedMarkersKey(_ changelog: InternalPartition) -> [UInt8] {
        Array("owed-markers:\(changelog.topic):\(changelog.partition)".utf8)
    }
}
