import Foundation
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
        guard let key = Self.key(of: request) else {
            return Responses.error(.unauthorized, "an API key is required: send Authorization: Bearer KEY or X-API-Key: KEY",
                                   headers: [.wwwAuthenticate: "Bearer"])
        }
        guard keys.contains(key) else {
            return Responses.error(.unauthorized, "the API key is not one of serve.api_keys", headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        }
        return try await next(request, context)
    }

    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    /// The key a request presents, if any.
    static func key(of request: Request) -> String? {
        // The scheme name is case-insensitive (RFC 9110).
        if let bearer = request.headers[.authorization], bearer.lowercased().hasPrefix("bearer ") {
            return bearer.dropFirst(7).trimmingCharacters(in: .whitespaces)
        }
        return request.headers[apiKeyHeader]
    }
}
