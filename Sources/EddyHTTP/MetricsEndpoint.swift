import Hummingbird
import Logging

/// The metrics endpoint: `GET /metrics` (Prometheus text), `GET /healthz`, JSON 404s.
///
/// `render` runs for each scrape in the server's connection task (Swift's concurrency pool;
/// NIO's event loops move the bytes), so it must only read (the runtime's counters are
/// atomics) and never wait for a stream thread.
public enum MetricsEndpoint {
    /// Prometheus' text exposition format, version 0.0.4.
    public static let contentType = "text/plain; version=0.0.4"

    /// Long enough for any scraper on a keep-alive connection to send its next request
    /// (Prometheus reconnects when it has to), short enough that idle or stalled clients
    /// cannot pile up.
    public static let defaultIdleTimeout: Duration = .seconds(10)

    public static func start(host: String = "127.0.0.1", port: Int, idleTimeout: Duration = defaultIdleTimeout,
                             logger: Logger, render: @escaping @Sendable () -> String) throws -> HTTPServer {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: render())))
        }
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        return try HTTPServer(host: host, port: port, router: router, idleTimeout: idleTimeout, logger: logger)
    }
}
