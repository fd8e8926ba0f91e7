@testable import EddyServe
import XCTest

/// Request metrics are labelled by route pattern, never by the raw path.
final class RouteLabelTests: XCTestCase {
    func testPathsMapToTheirPatternAndOthersToUnmatched() {
        let routes = RouteTable(["/v1/events", "/v1/events:batch", "/v1/users/{id}/features", "/metrics", "/v1/items/{id}/similar"])
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/events", in: routes), "/v1/events")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/events:batch", in: routes), "/v1/events:batch")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/users/u17/features", in: routes), "/v1/users/{id}/features")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/items/i3/similar", in: routes), "/v1/items/{id}/similar")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/users/u17/other", in: routes), "unmatched")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/users/features", in: routes), "unmatched")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/users/u17/features/", in: routes), "unmatched")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/v1/events/", in: routes), "unmatched")
        XCTAssertEqual(RequestMetricsMiddleware.label(of: "/random/\(UUID())", in: routes), "unmatched")
    }

    /// A fixed path is its own route even where a parametric pattern would also match it.
    func testAFixedPatternWinsOverAParametricOne() {
        let routes = RouteTable(["/v1/users/{id}/features", "/v1/users/me/features"])
        XCTAssertEqual(routes.pattern(of: "/v1/users/me/features"), "/v1/users/me/features")
        XCTAssertEqual(routes.pattern(of: "/v1/users/u1/features"), "/v1/users/{id}/features")
    }

    func testUserKeyedSinksAreTheFeatures() {
        XCTAssertEqual(UserFeaturesRoute.placeholders("user:{user_id}:counts"), ["user_id"])
        XCTAssertEqual(UserFeaturesRoute.placeholders("user:{user_id}:{event_type}"), ["user_id", "event_type"])
        XCTAssertEqual(UserFeaturesRoute.placeholders("items:popular"), [])
    }
}
