import EddyKafka
import XCTest

/// Every publish returns, whatever the broker does and whenever the producer is closed:
/// no request of `eddy serve` can wait forever or touch a destroyed client.
final class AcknowledgedProducerTests: XCTestCase {
    /// No broker listens on the port: records wait, time out or are purged by close().
    private func unreachable(timeoutMs: Int = 500, maxQueued: Int = 100_000) throws -> AcknowledgedProducer {
        try AcknowledgedProducer(config: KafkaConfig(["bootstrap.servers": "127.0.0.1:1", "log_level": "0"]),
                                 deliveryTimeoutMs: timeoutMs, maxQueued: maxQueued)
    }

    private static func records(_ n: Int) -> [(key: [UInt8], value: [UInt8])] {
        (0..<n).map { (Array("k\($0)".utf8), Array(#"{"n":\#($0)}"#.utf8)) }
    }

    func testRecordsTheBrokerNeverAcknowledgesFailInTime() async throws {
        let producer = try unreachable(timeoutMs: 300)
        let started = ContinuousClock.now
        let outcomes = await producer.publish(topic: "t", Self.records(20))
        XCTAssertEqual(outcomes.count, 20)
        XCTAssertTrue(outcomes.allSatisfy { if case .failed = $0 { return true }; return false }, "\(outcomes)")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        producer.close()
    }

    func testConcurrentPublishesAllReturnWhenClosedMidway() async throws {
        let producer = try unreachable(timeoutMs: 60_000)
        let returned = await withTaskGroup(of: Int.self) { group in
            // Large enough that enqueueing is still going on when close() comes.
            for _ in 0..<20 {
                group.addTask { await producer.publish(topic: "t", Self.records(5_000)).count }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(20))
                producer.close(timeoutMs: 0)
                return 0
            }
            var counts: [Int] = []
            for await n in group where n > 0 { counts.append(n) }
            return counts
        }
        XCTAssertEqual(returned, Array(repeating: 5_000, count: 20), "each publish returns one outcome per record")
        // After close, publishing fails at once and reading the producer is safe.
        let late = await producer.publish(topic: "t", Self.records(3))
        XCTAssertEqual(late, Array(repeating: .failed(reason: "the ingest producer is closed", possiblyWritten: false), count: 3))
        XCTAssertLessThanOrEqual(producer.queueDepth, 1, "no record is left (librdkafka may count one request of its own)")
        XCTAssertNil(producer.fatalError)
    }

    func testAFullQueueFailsAtOnceInsteadOfGrowing() async throws {
        let producer = try unreachable(timeoutMs: 60_000, maxQueued: 10)
        let outcomes = await withTaskGroup(of: [PublishOutcome].self) { group in
            group.addTask { await producer.publish(topic: "t", Self.records(25)) }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(300))
                producer.close(timeoutMs: 0)
                return []
            }
            var all: [PublishOutcome] = []
            for await o in group { all += o }
            return all
        }
        let queueFull = outcomes.filter { if case .failed(let reason, _) = $0 { return reason.contains("queue full") }; return false }
        XCTAssertEqual(outcomes.count, 25)
        XCTAssertEqual(queueFull.count, 15, "10 records fit the queue, the other 15 fail at once: \(outcomes)")
    }
}
