@testable import EddyStreams
import Foundation
import Synchronization
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

    /// SIGTERM while a step waits for a broker that is gone: the step must be given up at
    /// the stop's deadline, not at its own (15 s by default), or a stop could take two step
    /// time-outs and more (a fresh clone's fault test saw one miss 30 s).
    func testAStepRunningWhenTheStopComesIsGivenUpAtTheStopsDeadline() {
        let stop = Mutex<ContinuousClock.Instant?>(nil)
        let thread = DeadlineThread(name: "test") { stop.withLock { $0 } }
        let release = DispatchSemaphore(value: 0)
        defer { release.signal() }
        let start = ContinuousClock.now
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { stop.withLock { $0 = .now + .milliseconds(200) } }
        XCTAssertThrowsError(try thread.run("send offsets", timeout: .seconds(30)) { release.wait() }) { error in
            XCTAssertEqual((error as? StepTimedOut)?.cutByStop, true, "\(error)")
        }
        let waited = ContinuousClock.now - start
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(500))
        XCTAssertLessThan(waited, .seconds(10), "waited for the step's own deadline")
    }

    /// Past the stop's deadline a step (a replacement producer's init) does not start.
    func testAStepAfterTheStopsDeadlineDoesNotRun() {
        let thread = DeadlineThread(name: "test") { .now - .seconds(1) }
        let ran = Atomic(false)
        XCTAssertThrowsError(try thread.run("init transactions", timeout: .seconds(30)) { ran.store(true, ordering: .relaxed) }) { error in
            XCTAssertEqual((error as? StepTimedOut)?.cutByStop, true, "\(error)")
        }
        usleep(100_000)
        XCTAssertFalse(ran.load(ordering: .relaxed))
    }

    func testResultsAndErrorsOfCallsInTimeReachTheCaller() throws {
        struct Failure: Error {}
        let thread = DeadlineThread(name: "test")
        XCTAssertEqual(try thread.run("add", timeout: .seconds(5)) { 20 + 22 }, 42)
        XCTAssertThrowsError(try thread.run("fail", timeout: .seconds(5)) { throw Failure() }) { XCTAssertTrue($0 is Failure) }
    }
}
