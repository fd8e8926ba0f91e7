import EddyHTTP
import Logging
import Synchronization
import XCTest

/// The handler writes what StreamLogHandler writes, metadata included, though it formats
/// the metadata only when a line is written.
final class LazyMetadataLogHandlerTests: XCTestCase {
    final class Lines: TextOutputStream, Sendable {
        let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
    }

    func testLinesCarryTheMetadataSetBeforeThemAndHonourTheLevel() {
        let lines = Lines()
        var logger = Logger(label: "eddy.test") { label in
            var stream = StreamLogHandler(label: label, stream: lines)
            stream.logLevel = .info
            return LazyMetadataLogHandler(stream)
        }
        logger[metadataKey: "request"] = "r1"
        logger[metadataKey: "route"] = "/v1/events"
        logger.debug("below the level")
        logger.info("accepted", metadata: ["events": "3"])
        logger[metadataKey: "request"] = "r2"
        logger.warning("late")
        let written = lines.text.withLock { $0 }.split(separator: "\n")
        XCTAssertEqual(written.count, 2, "\(written)")
        XCTAssertTrue(written[0].hasSuffix("info eddy.test: events=3 request=r1 route=/v1/events [EddyTests] accepted"), String(written[0]))
        XCTAssertTrue(written[1].hasSuffix("warning eddy.test: request=r2 route=/v1/events [EddyTests] late"), String(written[1]))
        XCTAssertEqual(logger[metadataKey: "request"], "r2")
    }
}
