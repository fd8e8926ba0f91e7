import EddyStreams
import Synchronization

/// The metrics of `eddy serve` at its `/metrics`: requests per route and status with their
/// latency, what ingest accepted, refused and published, and the query routes' Redis
/// errors, cache, fallbacks, circuit breaker and experiment variants.
final class ServeMetrics: Sendable {
    /// Event types seen at most as labels; further ones count as "other", so a client that
    /// sends random types cannot grow the metrics without bound.
    static let maxEventTypes = 64

    private struct Counts {
        var requests: [String: [Int: Int]] = [:]
        var accepted: [String: Int] = [:]
        var rejected: [String: [String: Int]] = [:]
        var fallbacks: [String: Int] = [:]
        /// Per experiment variant: requests answered and items served.
        var variants: [String: (requests: Int, items: Int)] = [:]
        var experiment: String?
    }

    private let counts = Mutex(Counts())
    private let latency = Mutex<[String: LatencyHistogram]>([:])
    let publishLatency = LatencyHistogram()
    /// Events the broker did not acknowledge in time (answered 503).
    let publishFailures = Atomic<Int>(0)
    /// Requests refused by the rate limit (429).
    let rateLimited = Atomic<Int>(0)
    /// Ingest producers replaced after a fatal error.
    let producerReplacements = Atomic<Int>(0)
    /// Query routes: Redis calls that failed, cache hits and misses.
    let redisErrors = Atomic<Int>(0)
    let cacheHits = Atomic<Int>(0)
    let cacheMisses = Atomic<Int>(0)

    init() {}

    func request(route: String, status: Int, seconds: Double) {
        counts.withLock { $0.requests[route, default: [:]][status, default: 0] += 1 }
        histogram(route).observe(seconds: seconds)
    }

    private func histogram(_ route: String) -> LatencyHistogram {
        latency.withLock { table in
            if let h = table[route] { return h }
            let h = LatencyHistogram()
            table[route] = h
            return h
        }
    }

    func accepted(eventType: String?, count: Int = 1) {
        counts.withLock { c in
            let label = Self.label(eventType, seen: c.accepted.count) { c.accepted[$0] != nil }
            c.accepted[label, default: 0] += count
        }
    }

    func rejected(reason: String, eventType: String?) {
        counts.withLock { c in
            let label = Self.label(eventType, seen: c.rejected.count) { c.rejected[$0] != nil }
            c.rejected[label, default: [:]][reason, default: 0] += 1
        }
    }

    private static func label(_ eventType: String?, seen: Int, known: (String) -> Bool) -> String {
        guard let eventType else { return "none" }
        return known(eventType) || seen < maxEventTypes ? eventType : "other"
    }

    func cacheLookup(hit: Bool, enabled: Bool) {
        guard enabled else { return }
        if hit { cacheHits.add(1, ordering: .relaxed) } else { cacheMisses.add(1, ordering: .relaxed) }
    }

    func fallback(_ reason: RecommendationService.FallbackReason) {
        counts.withLock { $0.fallbacks[reason.rawValue, default: 0] += 1 }
    }

    func served(experiment: String?, variant: String, items: Int, fallback: String?) {
        counts.withLock { c in
            c.experiment = experiment
            let n = c.variants[variant] ?? (0, 0)
            c.variants[variant] = (n.requests + 1, n.items + items)
        }
    }

    /// The query routes' families (`circuitOpen`: nil when they are off).
    private func queryFamilies(_ c: Counts, circuitOpen: Bool?, circuitOpenings: Int) -> [MetricFamily] {
        guard let circuitOpen else { return [] }
        let experiment = c.experiment ?? "none"
        return [
            MetricFamily(name: "eddy_serve_redis_errors_total", kind: .counter, help: "Redis calls of the query routes that failed or could not be made.",
                         samples: [.init(labels: [], value: .integer(redisErrors.load(ordering: .relaxed)))]),
            MetricFamily(name: "eddy_serve_cache_requests_total", kind: .counter, help: "Recommendation cache lookups, by result.",
                         samples: [.init(labels: [("result", "hit")], value: .integer(cacheHits.load(ordering: .relaxed))),
                                   .init(labels: [("result", "miss")], value: .integer(cacheMisses.load(ordering: .relaxed)))]),
            MetricFamily(name: "eddy_serve_fallbacks_total", kind: .counter, help: "Answers of popular items from the snapshot instead of a computed one, by reason.",
                         samples: RecommendationService.FallbackReason.allCases.map {
                             .init(labels: [("reason", $0.rawValue)], value: .integer(c.fallbacks[$0.rawValue] ?? 0))
                         }),
            MetricFamily(name: "eddy_serve_circuit_open", kind: .gauge, help: "1 while the circuit breaker holds Redis calls back.",
                         samples: [.init(labels: [], value: .integer(circuitOpen ? 1 : 0))]),
            MetricFamily(name: "eddy_serve_circuit_openings_total", kind: .counter, help: "Times the circuit breaker opened.",
                         samples: [.init(labels: [], value: .integer(circuitOpenings))]),
            MetricFamily(name: "eddy_serve_experiment_requests_total", kind: .counter, help: "Recommendation requests answered, by experiment and variant.",
                         samples: c.variants.sorted { $0.key < $1.key }.map { .init(labels: [("experiment", experiment), ("variant", $0.key)], value: .integer($0.value.requests)) }),
            MetricFamily(name: "eddy_serve_experiment_items_total", kind: .counter, help: "Items served in recommendation answers, by experiment and variant.",
                         samples: c.variants.sorted { $0.key < $1.key }.map { .init(labels: [("experiment", experiment), ("variant", $0.key)], value: .integer($0.value.items)) }),
        ]
    }

    func families(queueDepth: Int?, circuitOpen: Bool? = nil, circuitOpenings: Int = 0) -> [MetricFamily] {
        let c = counts.withLock { $0 }
        let histograms = latency.withLock { $0 }.sorted { $0.key < $1.key }
        var families = [
            MetricFamily(name: "eddy_http_requests_total", kind: .counter, help: "HTTP requests answered, by route and status.",
                         samples: c.requests.sorted { $0.key < $1.key }.flatMap { route, statuses in
                             statuses.sorted { $0.key < $1.key }.map {
                                 .init(labels: [("route", route), ("status", String($0.key))], value: .integer($0.value))
                             }
                         }),
            MetricFamily(name: "eddy_http_request_duration_seconds", kind: .histogram, help: "Time to answer a request, by route.",
                         samples: histograms.map { .init(labels: [("route", $0.key)], value: $0.value.value) }),
            MetricFamily(name: "eddy_ingest_events_accepted_total", kind: .counter,
                         help: "Events the broker acknowledged, by event type (the first \(Self.maxEventTypes) types seen; later ones count as other).",
                         samples: c.accepted.sorted { $0.key < $1.key }.map { .init(labels: [("event_type", $0.key)], value: .integer($0.value)) }),
            MetricFamily(name: "eddy_ingest_events_rejected_total", kind: .counter, help: "Events refused as invalid (400), by reason and event type.",
                         samples: c.rejected.sorted { $0.key < $1.key }.flatMap { type, reasons in
                             reasons.sorted { $0.key < $1.key }.map {
                                 .init(labels: [("reason", $0.key), ("event_type", type)], value: .integer($0.value))
                             }
                         }),
            MetricFamily(name: "eddy_ingest_publish_failures_total", kind: .counter, help: "Events the broker did not acknowledge in time (answered 503).",
                         samples: [.init(labels: [], value: .integer(publishFailures.load(ordering: .relaxed)))]),
            MetricFamily(name: "eddy_ingest_publish_latency_seconds", kind: .histogram, help: "Time from publishing a request's events to the broker's acknowledgement.",
                         samples: [.init(labels: [], value: publishLatency.value)]),
            MetricFamily(name: "eddy_ingest_rate_limited_total", kind: .counter, help: "Requests refused by the per-client rate limit (429).",
                         samples: [.init(labels: [], value: .integer(rateLimited.load(ordering: .relaxed)))]),
            MetricFamily(name: "eddy_ingest_producer_replacements_total", kind: .counter, help: "Ingest producers replaced: after the broker fenced or failed one for good, or once the source topic appeared.",
                         samples: [.init(labels: [], value: .integer(producerReplacements.load(ordering: .relaxed)))]),
        ]
        families += queryFamilies(c, circuitOpen: circuitOpen, circuitOpenings: circuitOpenings)
        if let queueDepth {
            families.append(MetricFamily(name: "eddy_ingest_producer_queue_depth", kind: .gauge, help: "Events waiting for the broker's acknowledgement.",
                                         samples: [.init(labels: [], value: .integer(queueDepth))]))
        }
        return families
    }
}
