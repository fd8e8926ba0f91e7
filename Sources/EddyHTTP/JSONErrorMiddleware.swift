import Hummingbird

/// Makes every error response JSON with a message, `{"error":{"message":"…"}}`, so clients
/// of any Eddy endpoint parse one shape. Hummingbird answers an unknown route with an empty
/// 404; this names what was asked for instead.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.body == nil {
            let message = error.status == .notFound
                ? "no route for \(request.method) \(request.uri.path)"
                : error.status.reasonPhrase
            throw HTTPError(error.status, headers: error.headers, message: message)
        }
    }
}
