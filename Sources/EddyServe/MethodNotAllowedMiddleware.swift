import Hummingbird

/// A request for a known route with a method the route does not take gets 405 with the
/// methods it does take in `Allow` (RFC 9110), not the router's 404. HEAD too: Hummingbird
/// routes by method before middleware runs, so HEAD cannot be answered as a GET here.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = ServeContext
    /// The served routes (the metrics middleware's table).
    let routes: RouteTable
    /// Route pattern → its methods.
    let methods: [String: [HTTPRequest.Method]]

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        guard let route = routes.pattern(of: request.uri.path), let allowed = methods[route], !allowed.contains(request.method) else {
            return try await next(request, context)
        }
        let names = allowed.map(\.rawValue).joined(separator: ", ")
        return Responses.error(.methodNotAllowed, "\(route) takes \(names), not \(request.method.rawValue)", headers: [.allow: names])
    }
}
