import EddyState
import Foundation
import XCTest

/// A test class whose every test gets a fresh RocksDB in a temporary directory (`db`),
/// closed and removed after the test.
class TemporaryDatabaseTestCase: XCTestCase {
    var dir: URL!
    var db: StateDatabase!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-test-db-\(UUID().uuidString.prefix(8))")
        db = try StateDatabase(path: dir.path, memoryBudgetBytes: 16 << 20)
    }

    override func tearDown() {
        db.close()
        try? FileManager.default.removeItem(at: dir)
    }
}
