import XCTest

/// A test class whose tests share one Tansu and one redis-server, started before its first
/// test and stopped after its last.
class ServicesTestCase: XCTestCase {
    nonisolated(unsafe) static var services: LocalServices!

    override class func setUp() {
        super.setUp()
        do { services = try LocalServices() } catch { fatalError("cannot start services: \(error)") }
    }

    override class func tearDown() {
        services?.stop()
        super.tearDown()
    }

    var services: LocalServices { Self.services }
}
