import EddyStreams
import Synchronization

/// Observations of a latency in fixed buckets (seconds), as Prometheus histograms want them.
final class LatencyHistogram: Sendable {
    /// 0.25 ms to 10 s: ingest acknowledgements take about a millisecond on loopback, and
    /// the publish time-out is seconds.
    static let bounds: [Double] = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct State {
        var counts = [Int](repeating: 0, count: LatencyHistogram.bounds.count)
        var sum = 0.0
        var count = 0
    }

    private let state = Mutex(State())

    init() {}

    func observe(seconds: Double) {
        let bucket = Self.bounds.firstIndex { seconds <= $0 }
        state.withLock { s in
            if let bucket { s.counts[bucket] += 1 }
            s.sum += seconds
            s.count += 1
        }
    }

    /// Cumulative, as the exposition format counts them.
    var value: MetricFamily.Value {
        state.withLock { s in
            var running = 0
            let cumulative = s.counts.map { running += $0; return running }
            return .histogram(buckets: Self.bounds, counts: cumulative, sum: s.sum, count: s.count)
        }
    }
}
