import Foundation

/// Where a replay starts, per source partition, written by `eddy reset` beside the
/// application's state directory. A partition without a local checkpoint starts here
/// (else from the beginning); records older than `minTimestamp` are skipped, because some
/// brokers (Tansu) answer offsets-for-times at batch granularity.
public struct ReplayStart: Codable, Equatable, Sendable {
    public struct Position: Codable, Equatable, Sendable {
        public var offset: Int64
        public var minTimestamp: Int64?
    }

    public var topic: String
    public var partitions: [Int32: Position]

    public init(topic: String, partitions: [Int32: Position]) {
        self.topic = topic
        self.partitions = partitions
    }

    static func path(stateDir: String, application: String) -> String {
        URL(fileURLWithPath: stateDir).appendingPathComponent("\(application).replay-start.json").path
    }

    static func load(stateDir: String, application: String) throws -> ReplayStart? {
        let path = path(stateDir: stateDir, application: application)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSONDecoder().decode(ReplayStart.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func save(stateDir: String, application: String) throws {
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: Self.path(stateDir: stateDir, application: application)))
    }
}
