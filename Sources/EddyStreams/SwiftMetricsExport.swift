import CoreMetrics

/// Copies `StreamsMetrics` into a swift-metrics backend (statsd, OpenTelemetry,
/// swift-prometheus' factory, …) with the same names as `/metrics`: the metric name is the
/// label and the Prometheus labels are the dimensions.
///
/// Pull, not push: stream threads keep adding to their atomics and never call a backend;
/// the runtime's monitoring loop publishes the totals every log interval, so a backend's
/// locks and allocations stay off the hot path. Counters receive the increase since the
/// last publish, gauges the current value.
///
/// Not Sendable: one thread (the loop in `StreamsRuntime.run()`) owns it.
final class SwiftMetricsExport {
    private let factory: any MetricsFactory
    private var counters: [String: (handler: any CounterHandler, published: Int)] = [:]
    private var realCounters: [String: (handler: any FloatingPointCounterHandler, published: Double)] = [:]
    private var gauges: [String: any RecorderHandler] = [:]

    /// `factory` defaults to the one the process bootstrapped (`MetricsSystem.bootstrap`);
    /// without a bootstrap it is swift-metrics' no-op backend.
    init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    func publish(_ families: [MetricFamily]) {
        var current = Set<String>()
        for family in families {
            for sample in family.samples {
                let dimensions = sample.labels.map { ($0.name, $0.value) }
                let key = family.name + "{" + dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
                current.insert(key)
                switch (family.kind, sample.value) {
                case (.counter, .integer(let total)):
                    let entry = counters[key] ?? (factory.makeCounter(label: family.name, dimensions: dimensions), 0)
                    if total > entry.published { entry.handler.increment(by: Int64(total - entry.published)) }
                    counters[key] = (entry.handler, max(total, entry.published))
                case (.counter, .real(let total)):
                    let entry = realCounters[key] ?? (factory.makeFloatingPointCounter(label: family.name, dimensions: dimensions), 0)
                    if total > entry.published { entry.handler.increment(by: total - entry.published) }
                    realCounters[key] = (entry.handler, max(total, entry.published))
                case (.gauge, let value):
                    let handler = gauges[key] ?? factory.makeRecorder(label: family.name, dimensions: dimensions, aggregate: false)
                    gauges[key] = handler
                    switch value {
                    case .integer(let value): handler.record(Int64(value))
                    case .real(let value): handler.record(value)
                    case .histogram: break
                    }
                case (.histogram, _), (.counter, .histogram):
                    // Bucket counts cannot be replayed into a backend's own histogram; a
                    // backend gets latencies from its own timers.
                    break
                }
            }
        }
        // A partition that moved to another process takes its lag gauge with it.
        for (key, handler) in gauges where !current.contains(key) {
            factory.destroyRecorder(handler)
            gauges[key] = nil
        }
    }
}
