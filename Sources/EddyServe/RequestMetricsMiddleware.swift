import Hummingbird

/// Counts each answer by route and status, with its latency.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    let metrics: ServeMetrics
    let routes: RouteTable

    /// The pattern `path` matches, or "unmatched": the label never holds a raw path, so
    /// clients cannot grow the metrics without bound.
    static func label(of path: String, in routes: RouteTable) -> String { routes.pattern(of: path) ?? "unmatched" }

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let route = Self.label(of: request.uri.path, in: routes)
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
