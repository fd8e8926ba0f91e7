@testable import EddyServe
import XCTest

/// The breaker's states, each test named after the failure it keeps out.
final class CircuitBreakerTests: XCTestCase {
    private let t0 = ContinuousClock.now

    func testOpensAfterThresholdFailuresInARowAndNotBefore() {
        var b = CircuitBreaker(threshold: 3, openFor: .seconds(2))
        for _ in 0..<2 { b.failed(at: t0) }
        XCTAssertFalse(b.isOpen)
        XCTAssertTrue(b.allows(at: t0))
        b.failed(at: t0)
        XCTAssertTrue(b.isOpen)
        XCTAssertFalse(b.allows(at: t0 + .seconds(1)), "held back while open")
        XCTAssertEqual(b.openings, 1)
    }

    func testASuccessBetweenFailuresStartsTheCountAgain() {
        var b = CircuitBreaker(threshold: 3, openFor: .seconds(2))
        b.failed(at: t0)
        b.failed(at: t0)
        b.succeeded()
        b.failed(at: t0)
        b.failed(at: t0)
        XCTAssertFalse(b.isOpen, "failures not in a row do not open it")
    }

    func testAfterTheOpenTimeOneProbeGoesThroughAndItsSuccessCloses() {
        var b = CircuitBreaker(threshold: 1, openFor: .seconds(2))
        b.failed(at: t0)
        XCTAssertTrue(b.allows(at: t0 + .seconds(2)), "the probe")
        XCTAssertFalse(b.allows(at: t0 + .seconds(2)), "only one probe at a time: a failing Redis is not hammered")
        b.succeeded()
        XCTAssertFalse(b.isOpen)
        XCTAssertTrue(b.allows(at: t0 + .seconds(2)))
    }

    func testAFailedProbeOpensItAgainForAnotherPeriod() {
        var b = CircuitBreaker(threshold: 1, openFor: .seconds(2))
        b.failed(at: t0)
        XCTAssertTrue(b.allows(at: t0 + .seconds(3)))
        b.failed(at: t0 + .seconds(3))
        XCTAssertFalse(b.allows(at: t0 + .seconds(4)))
        XCTAssertTrue(b.allows(at: t0 + .seconds(5)))
        XCTAssertEqual(b.openings, 2)
    }

    func testALateFailureOfACallLetThroughBeforeItOpenedDoesNotExtendTheOpenTime() {
        var b = CircuitBreaker(threshold: 1, openFor: .seconds(2))
        b.failed(at: t0)
        b.failed(at: t0 + .seconds(1))  // a call that was already running
        XCTAssertTrue(b.allows(at: t0 + .seconds(2)))
        XCTAssertEqual(b.openings, 1)
    }

    func testAProbeWhoseOutcomeNeverComesIsReplacedSoTheBreakerCannotStayHalfOpen() {
        var b = CircuitBreaker(threshold: 1, openFor: .seconds(2), probeTimeout: .seconds(15))
        b.failed(at: t0)
        XCTAssertTrue(b.allows(at: t0 + .seconds(2)), "the probe (then skipped in the queue: no outcome)")
        XCTAssertFalse(b.allows(at: t0 + .seconds(16)))
        XCTAssertTrue(b.allows(at: t0 + .seconds(17)), "a new probe once the first cannot still be running")
        b.succeeded()
        XCTAssertFalse(b.isOpen)
    }
}
