import EddyStreams
import Synchronization

/// The metrics of `eddy serve` at its `/metrics`: requests per route and status with their
/// latency, and what ingest accepted, refused and published.
final class ServeMetrics: Sendable {
    /// Event types seen at most as labels; further ones count as "other", so a client that
    /// sends random types cannot grow the metrics without bound.
    static let maxEventTypes = 64

    private struct Counts {
        var requests: [String: [Int: Int]] = [:]
        var accepted: [String: Int] = [:]
        var rejected: [String: [String: Int]] = [:]
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

    func families(queueDepth: Int?) -> [MetricFamily] {
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
        if let queueDepth {
            families.append(MetricFamily(name: "eddy_ingest_producer_queue_depth", kind: .gauge, help: "Events waiting for the broker's acknowledgement.",
                                         samples: [.init(labels: [], value: .integer(queueDepth))]))
        }
        return families
    }
}
