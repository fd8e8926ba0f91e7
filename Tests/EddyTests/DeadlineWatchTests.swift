@testable import EddyServe
import Synchronization
import XCTest

final class DeadlineWatchTests: XCTestCase {
    func testACallPastItsDeadlineIsToldOnceAndNotBefore() {
        let watch = DeadlineWatch()
        let told = Mutex<[ContinuousClock.Instant]>([])
        let deadline = ContinuousClock.now + .milliseconds(30)
        let late = expectation(description: "told it is late")
        _ = watch.watch(until: deadline) {
            told.withLock { $0.append(.now) }
            late.fulfill()
        }
        wait(for: [late], timeout: 5)
        Thread.sleep(forTimeInterval: 0.05)
        let times = told.withLock { $0 }
        XCTAssertEqual(times.count, 1, "once")
        XCTAssertGreaterThanOrEqual(times[0], deadline, "never before the deadline")
    }

    func testACallDoneInTimeIsNeverToldAndTheWatchGoesOn() {
        let watch = DeadlineWatch()
        let told = Atomic<Int>(0)
        let token = watch.watch(until: .now + .milliseconds(20)) { told.add(1, ordering: .relaxed) }
        watch.done(token)
        // A later call is still watched after the watch had nothing to do.
        Thread.sleep(forTimeInterval: 0.1)
        let late = expectation(description: "the second call is told")
        _ = watch.watch(until: .now + .milliseconds(10)) { late.fulfill() }
        wait(for: [late], timeout: 5)
        XCTAssertEqual(told.load(ordering: .relaxed), 0, "a call answered in time is not told it is late")
    }
}
