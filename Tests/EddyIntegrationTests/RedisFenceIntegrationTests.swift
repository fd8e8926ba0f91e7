import EddyRedis
@testable import EddyStreams
import XCTest

/// The fencing script against a real redis-server: Redis only moves forward in input
/// position per task.
final class RedisFenceIntegrationTests: XCTestCase {
    func testOlderPositionsAreRefusedAndNewerOnesApplied() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let redis = try services.redis()
        let watermark = RedisViewWriter.watermarkKey(application: "fence", partition: "clicks-0")
        var writer = RedisViewWriter()
        var scriptSHA: String?
        writer.chunkSize = 2  // several script calls per task: each one is fenced

        func send(_ value: String, at offset: Int64, wholeState: Bool = false) throws -> RedisViewWriter.Outcome {
            writer.reset()
            writer.addPending(pending(value))
            writer.fence(watermark: watermark, offset: offset, wholeState: wholeState)
            return try writer.send(over: redis, scriptSHA: &scriptSHA)
        }
        func write(_ value: String, at offset: Int64) throws -> Int { try send(value, at: offset).refused }
        let wm = String(decoding: watermark, as: UTF8.self)
        XCTAssertEqual(try send("90", at: 90).missingWatermarks, [watermark: 90], "a new task's first write finds no watermark")
        XCTAssertNil(try redis.send("HGET", wm, "offset").string, "and does not create it: it is not the whole state")
        XCTAssertEqual(try redis.send("HGET", "k1", "f").string, "90", "its block is applied all the same")
        XCTAssertEqual(try send("100", at: 100, wholeState: true).missingWatermarks, [:], "the whole state creates the watermark")
        XCTAssertEqual(try redis.send("HGET", "k1", "f").string, "100")
        XCTAssertEqual(try redis.send("HGET", String(decoding: watermark, as: UTF8.self), "offset").string, "100")

        XCTAssertEqual(try write("50", at: 50), 2, "both blocks of an older position are refused")
        XCTAssertEqual(try redis.send("HGET", "k1", "f").string, "100")
        XCTAssertEqual(try redis.send("GET", "k3").string, "100")

        XCTAssertEqual(try write("100", at: 100), 0, "the same position again is harmless")
        XCTAssertEqual(try send("150", at: 150).missingWatermarks, [:])
        XCTAssertEqual(try redis.send("HGET", "k1", "f").string, "150")
        XCTAssertEqual(try redis.send("ZSCORE", "k2", "m").string, "150")
        XCTAssertEqual(try redis.send("GET", "k3").string, "150")

        _ = try redis.send("SCRIPT", "FLUSH")  // as after a Redis restart
        XCTAssertEqual(try write("160", at: 160), 0)
        XCTAssertEqual(try redis.send("GET", "k3").string, "160")

        _ = try redis.send("FLUSHALL")  // as after a Redis restart without its data
        XCTAssertEqual(try send("170", at: 170).missingWatermarks, [watermark: 170], "a lost watermark is reported")
        XCTAssertEqual(try redis.send("GET", "k3").string, "170", "and the block still applied")
        XCTAssertEqual(try send("180", at: 180).missingWatermarks, [watermark: 180], "and stays missing until the whole state is written")
        XCTAssertEqual(try send("190", at: 190, wholeState: true).missingWatermarks, [:])
        XCTAssertEqual(try redis.send("HGET", wm, "offset").string, "190")
    }

    private func pending(_ value: String) -> PendingRedisWrites {
        var p = PendingRedisWrites()
        p.set(.init(kind: .hash, key: Array("k1".utf8), field: Array("f".utf8)), Array(value.utf8), ttl: nil)
        p.set(.init(kind: .zset, key: Array("k2".utf8), field: Array("m".utf8)), Array(value.utf8), ttl: nil)
        p.set(.init(kind: .string, key: Array("k3".utf8), field: []), Array(value.utf8), ttl: 60)
        return p
    }
}
