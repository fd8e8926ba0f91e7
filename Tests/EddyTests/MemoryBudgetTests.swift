@testable import EddyStreams
import XCTest

/// `state.memory_mb` split once: RocksDB, the threads' caches, librdkafka's queues.
final class MemoryBudgetTests: XCTestCase {
    func testSplitOf256MBOverTwoThreads() {
        let budget = MemoryBudget(megabytes: 256, threads: 2)
        XCTAssertEqual(budget.rocksDBBytes, 96 << 20)
        XCTAssertEqual(budget.writeBackCacheBytesPerThread, 32 << 20)
        let consumer = budget.consumerProperties(["bootstrap.servers": "b:9092"])
        XCTAssertEqual(consumer["queued.max.messages.kbytes"], String((8 << 10) / 3))
        XCTAssertEqual(consumer["bootstrap.servers"], "b:9092")
        let producer = budget.producerProperties([:])
        XCTAssertEqual(producer["queue.buffering.max.kbytes"], String(4 << 10))
        XCTAssertEqual(producer["queue.buffering.max.messages"], String((4 << 20) / 256))
    }

    func testKafkaPropertiesTheUserSetWin() {
        let budget = MemoryBudget(megabytes: 256, threads: 1)
        let set = ["queued.max.messages.kbytes": "65536", "queue.buffering.max.kbytes": "1048576", "queue.buffering.max.messages": "100000"]
        XCTAssertEqual(budget.consumerProperties(set)["queued.max.messages.kbytes"], "65536")
        XCTAssertEqual(budget.producerProperties(set)["queue.buffering.max.kbytes"], "1048576")
        XCTAssertEqual(budget.producerProperties(set)["queue.buffering.max.messages"], "100000")
    }

    func testTinyBudgetsKeepLibrdkafkaWorkable() {
        let budget = MemoryBudget(megabytes: 8, threads: 4)
        XCTAssertEqual(budget.consumerProperties([:])["queued.max.messages.kbytes"], "1024")
        XCTAssertEqual(budget.producerProperties([:])["queue.buffering.max.messages"], "4096")
    }
}
