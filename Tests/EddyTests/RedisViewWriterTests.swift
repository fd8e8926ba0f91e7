@testable import EddyStreams
import XCTest

/// What RedisViewWriter leaves out: a repeated EXPIRE of a key within one commit, but not
/// one after the key may have vanished.
final class RedisViewWriterTests: XCTestCase {
    private func commands(_ view: RedisViewWriter) -> [String] {
        view.fencedBlocks.flatMap(\.commands).map { $0.arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") }
    }

    func testAKeyIsGivenItsExpiryOncePerCommitUnlessItMayHaveVanished() {
        var view = RedisViewWriter()
        let k = Array("co_view:a".utf8)
        view.expire(k, seconds: 60)
        view.expire(k, seconds: 60)                      // the same: left out
        view.expire(k, seconds: 90)                      // another expiry: sent
        view.removeMembers([Array("b".utf8)], of: k)     // the zset may now be empty and gone
        view.expire(k, seconds: 90)                      // so: sent again
        view.fence(watermark: Array("wm".utf8), offset: 1)
        view.expire(k, seconds: 90)                      // another task's (or commit's) block
        view.fence(watermark: Array("wm2".utf8), offset: 1)
        XCTAssertEqual(commands(view), ["EXPIRE co_view:a 60", "EXPIRE co_view:a 90", "ZREM co_view:a b", "EXPIRE co_view:a 90", "EXPIRE co_view:a 90"])
    }

    func testAReplacedListGetsItsExpiryEachTime() {
        var view = RedisViewWriter()
        let k = Array("user:recent:u".utf8)
        view.setList(k, [Array("x".utf8)], ttlSeconds: 60)
        view.setList(k, [Array("y".utf8)], ttlSeconds: 60)
        view.fence(watermark: Array("wm".utf8), offset: 1)
        XCTAssertEqual(commands(view), ["DEL user:recent:u", "RPUSH user:recent:u x", "EXPIRE user:recent:u 60",
                                        "DEL user:recent:u", "RPUSH user:recent:u y", "EXPIRE user:recent:u 60"])
    }
}
