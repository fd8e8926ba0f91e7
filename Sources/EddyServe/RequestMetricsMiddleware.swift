import Hummingbird

/// Counts each answer by route and status, with its latency.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    let metrics: ServeMetrics
    /// Route patterns; `{name}` segments match any one segment (`/v1/users/{id}/features`).
    let routes: [String]

    /// The pattern `path` matches, or "unmatched": the label never holds a raw path, so
    /// clients cannot grow the metrics without bound.
    static func route(of path: String, in routes: [String]) -> String {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return routes.first { pattern in
            let parts = pattern.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == segments.count && zip(parts, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        } ?? "unmatched"
    }

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let route = Self.route(of: request.uri.path, in: routes)
        do {
            let response = try await next(request, context)
            metrics.request(route: route, status: response.status.code, seconds: (ContinuousClock.now - started).seconds)
            return response
        } catch let error as HTTPResponseError {
            metrics.request(route: route, status: error.status.code, seconds: (ContinuousClock.now - started).seconds)
            throw error
        }
    }
}
