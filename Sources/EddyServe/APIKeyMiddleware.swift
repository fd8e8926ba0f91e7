import HTTPTypes
import Hummingbird

/// Refuses `/v1/` requests without one of the configured keys (`Authorization: Bearer KEY`
/// or `X-API-Key: KEY`) with 401. Health, readiness and metrics stay open, as probes and
/// scrapers expect.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    let keys: Set<String>

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        guard !keys.isEmpty, request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        guard let key = Self.key(of: request), keys.contains(key) else {
            return Responses.error(.unauthorized, "an API key is required: send Authorization: Bearer KEY or X-API-Key: KEY",
                                   headers: [.wwwAuthenticate: "Bearer"])
        }
        return try await next(request, context)
    }

    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    /// The key a request presents, if any.
    static func key(of request: Request) -> String? {
        if let bearer = request.headers[.authorization], bearer.hasPrefix("Bearer ") { return String(bearer.dropFirst(7)) }
        return request.headers[apiKeyHeader]
    }
}
