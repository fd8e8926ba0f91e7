import EddyRedis
import XCTest

/// Redis AUTH against a real redis-server with an ACL user: the right password works on
/// every connection, a wrong one is a clear error that never shows the password.
final class RedisAuthIntegrationTests: XCTestCase {
    func testAnACLUserConnectsAndAWrongPasswordIsRefusedWithoutShowingIt() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let admin = try services.redis()
        XCTAssertEqual(try admin.send("ACL", "SETUSER", "eddy", "on", ">right-pass", "~app:*", "+@all").firstError, nil)

        let redis = try RedisConnection(host: "127.0.0.1", port: services.redisPort,
                                        credentials: RedisCredentials(user: "eddy", password: "right-pass"))
        XCTAssertEqual(try redis.send("SET", "app:k", "v").firstError, nil)
        XCTAssertNotNil(try redis.send("SET", "other:k", "v").firstError, "the ACL user's key pattern applies: AUTH took effect")
        // A reconnection authenticates again (Redis dropped the connection).
        _ = try admin.send("CLIENT", "KILL", "USER", "eddy")
        XCTAssertEqual(try redis.send("GET", "app:k").string, "v")

        XCTAssertThrowsError(try RedisConnection(host: "127.0.0.1", port: services.redisPort,
                                                 credentials: RedisCredentials(user: "eddy", password: "wrong-pass"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("AUTH as 'eddy' refused"), text)
            XCTAssertFalse(text.contains("wrong-pass"), text)
        }
        XCTAssertFalse("\(RedisCredentials(user: "eddy", password: "right-pass"))".contains("right-pass"))
    }
}
