@testable import EddyStreams
import Foundation
import XCTest

final class DeadlineThreadTests: XCTestCase {
    /// A call that never returns in time (librdkafka's send_offsets after a broker drop)
    /// must not hold the caller: it gets StepTimedOut after the deadline.
    func testACallPastItsDeadlineThrowsStepTimedOutWithoutWaitingForIt() {
        let thread = DeadlineThread(name: "test")
        let release = DispatchSemaphore(value: 0)
        let start = ContinuousClock.now
        XCTAssertThrowsError(try thread.run("stuck step", timeout: .milliseconds(200)) { release.wait() }) { error in
            XCTAssertEqual((error as? StepTimedOut)?.step, "stuck step")
        }
        let waited = ContinuousClock.now - start
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(200))
        XCTAssertLessThan(waited, .seconds(5))
        release.signal()
    }

    func testResultsAndErrorsOfCallsInTimeReachTheCaller() throws {
        struct Failure: Error {}
        let thread = DeadlineThread(name: "test")
        XCTAssertEqual(try thread.run("add", timeout: .seconds(5)) { 20 + 22 }, 42)
        XCTAssertThrowsError(try thread.run("fail", timeout: .seconds(5)) { throw Failure() }) { XCTAssertTrue($0 is Failure) }
    }
}
