@testable import EddyConfig
import EddyRedis
import EddyStreams
import Foundation
import XCTest

/// Secrets come from an environment variable or a file, never from the config file itself,
/// and no error shows them.
final class SecretConfigTests: XCTestCase {
    func testRedisPasswordFromTheEnvironmentOrAFile() throws {
        setenv("EDDY_TEST_REDIS_PASSWORD", "from-env", 1)
        defer { unsetenv("EDDY_TEST_REDIS_PASSWORD") }
        let fromEnv = try RuntimeConfigFile.parse("redis: {user: eddy, password: {env: EDDY_TEST_REDIS_PASSWORD}}\n", file: "c.yaml")
        XCTAssertEqual(fromEnv.redisCredentials?.user, "eddy")
        XCTAssertFalse("\(fromEnv)".contains("from-env"), "a printed config shows no secret")

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-secret-\(getpid())").path
        try "from-file\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try RuntimeConfigFile.parse("redis: {password: {file: \(path)}}\n", file: "c.yaml")
        XCTAssertEqual(fromFile.redisCredentials, RedisCredentials(user: nil, password: "from-file"))
    }

    func testAPlainOrMissingSecretIsAnErrorThatNamesTheFieldNotTheValue() {
        let cases: [(String, String)] = [
            ("redis: {password: hunter2}\n", "field 'redis.password'"),
            ("kafka: {properties: {sasl.password: hunter2}}\n", "field 'kafka.properties.sasl.password'"),
            ("redis: {password: {env: EDDY_TEST_UNSET_hunter}}\n", "EDDY_TEST_UNSET_hunter is not set"),
            ("redis: {password: {file: /nonexistent/hunter}}\n", "cannot read the secret file"),
            ("redis: {user: eddy}\n", "redis.user needs redis.password"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try RuntimeConfigFile.parse(yaml, file: "c.yaml"), yaml) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("c.yaml:1"), text)
                XCTAssertTrue(text.contains(expected), "\(yaml): \(text)")
                XCTAssertFalse(text.contains("hunter2"), text)
            }
        }
    }

    func testKafkaSecretPropertiesAreResolvedAndOthersStayPlain() throws {
        setenv("EDDY_TEST_SASL", "sasl-secret", 1)
        defer { unsetenv("EDDY_TEST_SASL") }
        let config = try RuntimeConfigFile.parse(
            "kafka: {properties: {security.protocol: SASL_SSL, sasl.username: eddy, sasl.password: {env: EDDY_TEST_SASL}}}\n", file: "c.yaml")
        XCTAssertEqual(config.kafkaProperties["sasl.password"], "sasl-secret")
        XCTAssertEqual(config.kafkaProperties["security.protocol"], "SASL_SSL")
    }
}
