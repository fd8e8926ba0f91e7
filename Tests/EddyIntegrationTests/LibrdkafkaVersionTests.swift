import Foundation
import XCTest

/// Startup errors: a librdkafka known not to work is refused with a fix; a missing config
/// file is named.
final class LibrdkafkaVersionTests: XCTestCase {
    func testDebiansLibrdkafkaIsRefusedWithAFix() throws {
        let debian = "/usr/lib/x86_64-linux-gnu"
        // scripts/setup installs librdkafka-dev, which brings Debian's runtime library.
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(debian)/librdkafka.so.1"))
        // LD_LIBRARY_PATH wins over the rpath to tools/librdkafka: this loads Debian's 2.0.2.
        let result = try EddyCLI.run(["consume-ceiling", "--topic", "any"], environment: ["LD_LIBRARY_PATH": debian])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("librdkafka 2.0.2 is loaded, but Eddy needs 2.15 or newer"), result.stderr)
        XCTAssertTrue(result.stderr.contains("scripts/setup"), result.stderr)
    }

    func testAMissingConfigFileIsAClearError() throws {
        let result = try EddyCLI.run(["run", "Topologies/user-counts.yaml", "--config", "/nonexistent.yaml"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("/nonexistent.yaml: cannot read the file"), result.stderr)
    }
}
