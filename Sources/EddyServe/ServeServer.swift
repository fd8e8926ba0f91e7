import EddyHTTP
import EddyKafka
import EddyRedis
import EddyStreams
import Hummingbird
import Logging

/// `eddy serve`: one HTTP server for event ingest and the query routes, with `/healthz`,
/// `/readyz` and `/metrics`.
public final class ServeServer: Sendable {
    private let http: HTTPServer
    private let ingest: IngestService?
    private let recommendations: RecommendationService?
    private let pipelines: PipelineWatch?
    public var port: Int { http.port }

    /// Starts listening. `topology` is the one ingest validates for and whose user state
    /// `/v1/users/{id}/features` reads (nil: neither).
    public init(config: ServeConfig, topology: Topology?, kafka: KafkaConfig, redis: RedisSettings, logger: Logger) throws {
        let metrics = ServeMetrics()
        var ingest: IngestService?
        if config.ingest.enabled {
            guard let topology else { throw ServeError("serve.ingest needs a topology (serve.ingest.topology or --topology)") }
            ingest = try IngestService.make(topology: topology, config: config.ingest, kafka: kafka, metrics: metrics, logger: logger)
        }
        let router = Router(context: ServeContext.self)
        let pool = RedisPool(.init(host: redis.host, port: redis.port, timeoutMs: redis.timeoutMs, credentials: redis.credentials))
        let features = topology.map { UserFeaturesRoute(topology: $0, redis: pool) }
        let recommendations = config.recommendations.enabled ? RecommendationService(config: config.recommendations, redis: pool, metrics: metrics, logger: logger) : nil
        recommendations?.waitForFirstModelRead(upTo: .seconds(2))
        // The document names every route (the metrics label requests by its paths).
        let served = OpenAPIDocument.Routes(ingest: ingest?.eventShape, userKeyField: topology?.source.keyField, recommendations: recommendations != nil,
                                            maxK: config.recommendations.maxK, defaultK: config.recommendations.defaultK, apiKeys: !config.apiKeys.isEmpty)
        let openAPI = Responses.json(.ok, OpenAPIDocument.document(served))
        let routes = RouteTable(OpenAPIDocument.paths(served))
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics, routes: routes))
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: MethodNotAllowedMiddleware(routes: routes, methods: OpenAPIDocument.methods(served)))
        router.add(middleware: APIKeyMiddleware(keys: Set(config.apiKeys)))
        router.get("/healthz") { _, _ in Responses.json(.ok, .object([("status", "ok")])) }
        router.get("/openapi.json") { _, _ in openAPI }
        router.get("/readyz") { [ingest] _, _ in
            if let ingest, !ingest.isPublishing {
                return Responses.error(.serviceUnavailable, "the broker has not acknowledged events since its last failure", extra: [("status", "not ready")])
            }
            if recommendations != nil || features != nil {
                guard case .value(let pong) = await pool.run(within: .milliseconds(500), { try $0.send("PING") }), pong.firstError == nil else {
                    return Responses.error(.serviceUnavailable, "Redis did not answer PING within 500 ms", extra: [("status", "not ready")])
                }
            }
            if let why = recommendations?.notReadyReason { return Responses.error(.serviceUnavailable, why, extra: [("status", "not ready")]) }
            if let recommendations { return Responses.json(.ok, .object([("status", "ready"), ("namespace", .string(recommendations.namespace))])) }
            return Responses.json(.ok, .object([("status", "ready")]))
        }
        router.get("/metrics") { [ingest] _, _ in
            let text = MetricFamily.prometheusText(metrics.families(queueDepth: ingest?.queueDepth, circuitOpen: recommendations?.circuitIsOpen,
                                                                    circuitOpenings: recommendations?.circuitOpenings ?? 0))
            return Response(status: .ok, headers: [.contentType: MetricsEndpoint.contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        recommendations.map { RecommendationRoutes(service: $0).add(to: router) }
        let pipelines = recommendations == nil ? nil : PipelineWatch(config.pipelineMetrics)
        if let pipelines {
            let page = LivePage.html(k: min(10, config.recommendations.maxK))
            router.get("/") { _, _ in
                Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
            }
            router.get("/v1/pipeline") { _, _ in Responses.json(.ok, pipelines.json) }
        }
        features?.add(to: router)
        if let ingest { IngestRoutes(service: ingest, limiter: config.rateLimit.map(RateLimiter.init), keyedClients: !config.apiKeys.isEmpty).add(to: router) }
        do {
            http = try HTTPServer(host: config.host, port: config.port, router: router, idleTimeout: .seconds(30), logger: logger)
        } catch {
            ingest?.close()
            recommendations?.stop()
            pipelines?.stop()
            throw error
        }
        self.ingest = ingest
        self.recommendations = recommendations
        self.pipelines = pipelines
    }

    /// Stops accepting, lets requests in flight finish, then closes the producer (which
    /// waits for its last acknowledgements).
    public func stop() {
        http.stop()
        ingest?.close()
        recommendations?.stop()
        pipelines?.stop()
    }
}

/// Where the state `eddy serve` reads lives (the runtime config's redis: section).
public struct RedisSettings: Sendable {
    public let host: String
    public let port: Int
    public let timeoutMs: Int
    public let credentials: RedisCredentials?

    public init(host: String, port: Int, timeoutMs: Int, credentials: RedisCredentials?) {
        self.host = host
        self.port = port
        self.timeoutMs = timeoutMs
        self.credentials = credentials
    }
}

public struct ServeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
