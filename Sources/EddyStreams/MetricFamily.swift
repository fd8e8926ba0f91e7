/// One exported metric and its current samples: the single list of names, types, help and
/// labels that both the Prometheus text and the swift-metrics export are made from.
public struct MetricFamily: Sendable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    public enum Value: Sendable, Equatable {
        case integer(Int)
        /// Seconds and other fractional quantities.
        case real(Double)
        /// Cumulative bucket counts by upper bound, the sum and the count of observations.
        case histogram(buckets: [Double], counts: [Int], sum: Double, count: Int)
    }

    public struct Sample: Sendable {
        public let labels: [(name: String, value: String)]
        public let value: Value

        public init(labels: [(name: String, value: String)], value: Value) {
            self.labels = labels
            self.value = value
        }
    }

    public let name: String
    public let kind: Kind
    public let help: String
    public let samples: [Sample]

    public init(name: String, kind: Kind, help: String, samples: [Sample]) {
        self.name = name
        self.kind = kind
        self.help = help
        self.samples = samples
    }
}

extension MetricFamily {
    /// Prometheus' text exposition format (0.0.4).
    ///
    /// Rendered here, not by swift-prometheus' `PrometheusCollectorRegistry`: its counters
    /// can only be incremented, so mirroring the atomics would keep a second copy of every
    /// value and compute deltas on each scrape, and it emits metrics in dictionary order.
    /// A process that wants swift-prometheus gets the same names by bootstrapping its
    /// `PrometheusMetricsFactory` (`SwiftMetricsExport` feeds it every log interval).
    public static func prometheusText(_ families: [MetricFamily]) -> String {
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                let labels = sample.labels.map { "\($0.name)=\"\(escapedLabelValue($0.value))\"" }.joined(separator: ",")
                let braced = labels.isEmpty ? "" : "{\(labels)}"
                guard case .histogram(let bounds, let counts, let sum, let count) = sample.value else {
                    out += "\(family.name)\(braced) \(sample.value.text)\n"
                    continue
                }
                let prefix = labels.isEmpty ? "" : labels + ","
                for (bound, cumulative) in zip(bounds, counts) {
                    out += "\(family.name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n"
                }
                out += "\(family.name)_bucket{\(prefix)le=\"+Inf\"} \(count)\n"
                out += "\(family.name)_sum\(braced) \(sum)\n\(family.name)_count\(braced) \(count)\n"
            }
        }
        return out
    }

    /// Label values may hold any text (an application name comes from a topology file);
    /// the format reserves backslash, double quote and newline.
    private static func escapedLabelValue(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

extension MetricFamily.Value {
    var text: String {
        switch self {
        case .integer(let value): return "\(value)"
        case .real(let value): return "\(value)"
        case .histogram(_, _, _, let count): return "\(count)"
        }
    }
}
