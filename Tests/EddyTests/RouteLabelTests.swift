@testable import EddyServe
import XCTest

/// Request metrics are labelled by route pattern, never by the raw path.
final class RouteLabelTests: XCTestCase {
    func testPathsMapToTheirPatternAndOthersToUnmatched() {
        let routes = ["/v1/events", "/v1/events:batch", "/v1/users/{id}/features", "/metrics"]
        XCTAssertEqual(RequestMetricsMiddleware.route(of: "/v1/events", in: routes), "/v1/events")
        XCTAssertEqual(RequestMetricsMiddleware.route(of: "/v1/events:batch", in: routes), "/v1/events:batch")
        XCTAssertEqual(RequestMetricsMiddleware.route(of: "/v1/users/u17/features", in: routes), "/v1/users/{id}/features")
        XCTAssertEqual(RequestMetricsMiddleware.route(of: "/v1/users/u17/other", in: routes), "unmatched")
        XCTAssertEqual(RequestMetricsMiddleware.route(of: "/v1/users/features", in: routes), "unmatched")
        XCTAssertEqual(RequestMetricsMiddleware.route(of: "/random/\(UUID())", in: routes), "unmatched")
    }

    func testUserKeyedSinksAreTheFeatures() {
        XCTAssertEqual(UserFeaturesRoute.placeholders("user:{user_id}:counts"), ["user_id"])
        XCTAssertEqual(UserFeaturesRoute.placeholders("user:{user_id}:{event_type}"), ["user_id", "event_type"])
        XCTAssertEqual(UserFeaturesRoute.placeholders("items:popular"), [])
    }
}
