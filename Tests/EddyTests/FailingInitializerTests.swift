import EddyKafka
import EddyState
import Foundation
import XCTest

/// Initializers of C-owning classes that fail after creating their C objects must throw
/// and free those objects exactly once. (Swift runs `deinit` when an initializer throws
/// after every property is set: cleanup in the initializer then freed them twice, and the
/// test process crashed.) No broker is needed: the failures happen before any network use.
final class FailingInitializerTests: XCTestCase {
    private final class IgnoringListener: RebalanceListener {
        func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] { [:] }
        func partitionsRevoked(_ partitions: [TopicPartition]) {}
    }

    func testConsumerWhoseSubscribeFailsThrowsOnce() {
        // librdkafka creates the client but refuses to subscribe to no topic at all.
        let config = KafkaConfig(["bootstrap.servers": "127.0.0.1:1", "group.id": "g"])
        for _ in 0..<3 {
            XCTAssertThrowsError(try KafkaConsumer(config: config, topics: [], listener: IgnoringListener())) {
                XCTAssertTrue("\($0)".contains("subscribe"), "\($0)")
            }
        }
    }

    func testConsumerWithoutGroupThrows() {
        // librdkafka creates a consumer without group.id, but it has no group queue to read.
        XCTAssertThrowsError(try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": "127.0.0.1:1"]), topics: ["t"],
                                               listener: IgnoringListener())) {
            XCTAssertTrue("\($0)".contains("group.id"), "\($0)")
        }
    }

    func testStateDatabaseThatCannotOpenThrowsAndLeavesTheOpenOneUsable() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-open-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = try StateDatabase(path: dir.path, memoryBudgetBytes: 16 << 20)
        // RocksDB's LOCK file refuses a second open of the same directory.
        XCTAssertThrowsError(try StateDatabase(path: dir.path, memoryBudgetBytes: 16 << 20))
        let cf = try db.columnFamily("kv")
        let batch = StateWriteBatch()
        batch.put(cf, key: [1], value: [2])
        try db.write(batch)
        XCTAssertEqual(try db.get(cf, key: [1]), [2])
        db.close()
    }
}
