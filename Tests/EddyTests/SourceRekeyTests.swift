import EddyConfig
@testable import EddyStreams
import EddyTestSupport
import XCTest

/// Source records whose Kafka key is not their key field's value (no key: a console
/// producer; another key: a service keyed by session) are re-keyed to the task of their key
/// field's value through `<application>-source-repartition`, in the test driver: the same
/// events keyed, unkeyed or keyed otherwise give the same state, equal to a brute-force
/// count per user, also across a restart and a lost disk.
final class SourceRekeyTests: XCTestCase {
    private static let partitions = 4

    private static let topology = keyedAnyWayTopology(application: "a", topic: "clicks")

    private struct Event {
        let user: Int, session: Int, item: Int, price: Int, time: Int64
        var json: String {
            #"{"user_id":"u\#(user)","session_id":"s\#(session)","item_id":"i\#(item)","price":\#(price),"ts":\#(time)}"#
        }
    }

    private func events(_ count: Int, seed: UInt64) -> [Event] {
        var random = TestRandom(seed: seed)
        var time: Int64 = 1_767_225_600_000
        return (0..<count).map { i in
            time += Int64(1 + random.below(60_000))
            return Event(user: random.below(50), session: i / 7, item: random.below(20), price: 1 + random.below(99), time: time)
        }
    }

    private enum Keying { case byField, none, bySession }

    /// Pipes the events as a producer keyed that way would: keyed by the field into the
    /// partition Kafka's partitioner gives it; without a key round-robin; keyed by session
    /// into the partition of the session's key.
    private func run(_ events: [Event], _ keying: Keying, commitEvery: Int = 37, restartAfterCommit: Int? = nil, emptyDisk: Bool = false) throws -> TopologyTestDriver {
        let driver = try TopologyTestDriver(try TopologyFile.parse(Self.topology, file: "rekey.yaml"), partitions: Self.partitions)
        for (i, e) in events.enumerated() {
            switch keying {
            case .byField: try driver.pipe(e.json)
            case .none: try driver.pipe(e.json, key: nil, partition: Int32(i % Self.partitions))
            case .bySession: try driver.pipe(e.json, key: "s\(e.session)", partition: Int32(kafkaPartition(ofKey: "s\(e.session)", partitions: Self.partitions)))
            }
            if i % commitEvery == commitEvery - 1 {
                try driver.commit()
                if i / commitEvery == restartAfterCommit { try emptyDisk ? driver.restartOnEmptyDisk() : driver.restart() }
            }
        }
        // Re-keyed records reach their task at a commit: one more commit delivers the last ones.
        try driver.commit()
        try driver.commit()
        return driver
    }

    func testKafkasPartitionerMatchesItsPublishedHashesAndAPlainReference() {
        // Kafka's murmur2 of these keys (org.apache.kafka.common.utils.UtilsTest), sign bit cleared.
        for (key, hash) in [("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536), ("abc", 479_470_107)] as [(String, Int64)] {
            XCTAssertEqual(Int64(KafkaKeyPartitioner.partition(of: Array(key.utf8), count: Int(Int32.max))), (hash & 0x7fff_ffff) % Int64(Int32.max), key)
        }
        var random = TestRandom(seed: 3)
        for _ in 0..<1_000 {
            let key = String((0..<random.below(12)).map { _ in Character(UnicodeScalar(UInt8(33 + random.below(90)))) })
            XCTAssertEqual(Int(KafkaKeyPartitioner.partition(of: Array(key.utf8), count: 7)), kafkaPartition(ofKey: key, partitions: 7), key)
        }
    }

    func testTheSameEventsKeyedUnkeyedOrKeyedBySessionGiveTheSameStateAsAPlainCount() throws {
        let events = events(2_000, seed: 11)
        let keyed = try run(events, .byField)
        let state = keyed.redis.filter { !$0.key.hasPrefix("eddy:") }
        var perUser: [Int: (count: Int, price: Int)] = [:]
        for e in events { perUser[e.user, default: (0, 0)].count += 1; perUser[e.user]!.price += e.price }
        for (user, c) in perUser {
            XCTAssertEqual(state["user:u\(user)"], .hash(["count": "\(c.count)", "sum_price": "\(c.price)"]), "u\(user)")
        }
        XCTAssertEqual(keyed.rekeyedSourceRecords, 0, "records keyed by their field stay where they are")
        for keying in [Keying.none, .bySession] {
            let other = try run(events, keying)
            XCTAssertEqual(other.redis.filter { !$0.key.hasPrefix("eddy:") }, state, "\(keying)")
            XCTAssertEqual(other.rekeyedSourceRecords, events.count, "\(keying): every record re-keyed once")
        }
    }

    func testReKeyedRecordsSurviveARestartAndALostDisk() throws {
        let events = events(1_500, seed: 12)
        let expected = try run(events, .byField).redis.filter { !$0.key.hasPrefix("eddy:") }
        for emptyDisk in [false, true] {
            let driver = try run(events, .none, restartAfterCommit: 20, emptyDisk: emptyDisk)
            XCTAssertEqual(driver.redis.filter { !$0.key.hasPrefix("eddy:") }, expected, emptyDisk ? "lost disk" : "restart")
        }
    }

    func testKeyedRightRecordsOfAnEscapedKeyStayAndTheTopologyNamesItsSourceRepartitionTopic() throws {
        let driver = try TopologyTestDriver(try TopologyFile.parse(Self.topology, file: "rekey.yaml"), partitions: Self.partitions)
        // The key is the field's value as a producer writes it: unescaped.
        try driver.pipe(#"{"user_id":"u\\1","session_id":"s","item_id":"i1","price":3,"ts":1767225600000}"#, key: #"u\1"#, partition: 2)
        try driver.commit()
        XCTAssertEqual(driver.rekeyedSourceRecords, 0)
        XCTAssertEqual(driver.redis[#"user:u\1"#], .hash(["count": "1", "sum_price": "3"]))
        let topology = try TopologyFile.parse(Self.topology, file: "rekey.yaml")
        XCTAssertEqual(try TopologyCompiler.compile(topology).sourceRekey.topic, "a-source-repartition")
        XCTAssertTrue(topology.describe().contains("re-keying: records whose Kafka key is not their user_id (or none) go through a-source-repartition to the task of their user_id"),
                      topology.describe())
    }
}
