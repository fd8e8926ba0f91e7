import Hummingbird

/// Counts each answer by route and status, with its latency.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    let metrics: ServeMetrics
    let routes: Set<String>

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let route = routes.contains(request.uri.path) ? request.uri.path : "unmatched"
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
