import EddyKafka
@testable import EddyStreams
import Logging
import Synchronization
import Foundation
import XCTest

/// What the repartition purge asks the broker to delete, and when it stops asking.
final class RepartitionPurgeTests: XCTestCase {
    private final class Deleter: RecordDeleter {
        let calls = Mutex<[[TopicPartition: Int64]]>([])
        let refuse: Bool
        init(refuse: Bool) { self.refuse = refuse }
        func deleteRecords(before offsets: [TopicPartition: Int64]) throws {
            calls.withLock { $0.append(offsets) }
            if refuse { throw KafkaError(code: -195, message: "Local: Broker transport failure") }
        }
    }

    private let a = TopicPartition("app-n-repartition", 0), b = TopicPartition("app-n-repartition", 1)

    /// Waits (at most 5 s) until the deleter was called `count` times.
    private func wait(for count: Int, _ deleter: Deleter) {
        let deadline = Date().addingTimeInterval(5)
        while deleter.calls.withLock({ $0.count }) < count, Date() < deadline { usleep(10_000) }
    }

    func testEachPartitionIsPurgedUpToItsLatestCommittedOffsetAtMostOncePerInterval() {
        let deleter = Deleter(refuse: false)
        let purge = RepartitionPurge(deleter: deleter, interval: .milliseconds(300), logger: Logger(label: "test"), name: "test")
        purge.committed([a: 10])             // the first purge runs at once
        wait(for: 1, deleter)
        purge.committed([a: 20, b: 5])       // within the interval: kept
        usleep(400_000)
        purge.committed([a: 30, b: 0])       // the latest offset wins; 0 deletes nothing
        wait(for: 2, deleter)
        XCTAssertEqual(deleter.calls.withLock { $0 }, [[a: 10], [a: 30, b: 5]])
    }

    func testAfterAFailureTheBrokerIsNotAskedAgainBeforeTheBackoffEnds() {
        let deleter = Deleter(refuse: true)
        let purge = RepartitionPurge(deleter: deleter, interval: .zero, logger: Logger(label: "test"), name: "test")
        purge.committed([a: 1])
        wait(for: 1, deleter)
        usleep(50_000)
        for offset in 2...6 { purge.committed([a: Int64(offset)]) }
        usleep(200_000)
        XCTAssertEqual(deleter.calls.withLock { $0 }, [[a: 1]], "backs off (at least 1 s) after the refusal")
    }
}
