import EddyKafka
@testable import EddyStreams
import Logging
import Synchronization
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

    func testEachPartitionIsPurgedUpToItsLatestCommittedOffsetAndTheRestAtTheStop() {
        let deleter = Deleter(refuse: false)
        let purge = RepartitionPurge(deleter: deleter, interval: .seconds(3600), logger: Logger(label: "test"), name: "test")
        purge.committed([a: 10])             // the first purge runs at once
        purge.committed([a: 20, b: 5])       // within the interval: kept
        purge.committed([a: 30, b: 0])       // the latest offset wins; 0 deletes nothing
        purge.finish()
        XCTAssertEqual(deleter.calls.withLock { $0 }, [[a: 10], [a: 30, b: 5]])
    }

    func testAfterAFailureTheBrokerIsNotAskedAgainBeforeTheBackoffEnds() {
        let deleter = Deleter(refuse: true)
        let purge = RepartitionPurge(deleter: deleter, interval: .zero, logger: Logger(label: "test"), name: "test")
        for offset in 1...6 {
            purge.committed([a: Int64(offset)])
            purge.finish()  // waits for the purge under way
        }
        XCTAssertEqual(deleter.calls.withLock { $0 }, [[a: 1]], "backs off (at least 1 s) after the refusal")
    }
}
