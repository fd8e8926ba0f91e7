import EddyRecs

/// Where `eddy promote` names the namespace serve answers from.
public enum ServeNamespace {
    /// A Redis string: the namespace (empty: keys without a prefix).
    public static let activeKey = "eddy:active_namespace"
}

/// What `eddy serve` runs: where it listens, who may call it, and the event ingest
/// (`serve:` in the runtime config file; `RuntimeConfigFile.parseServe` reads it).
public struct ServeConfig: Sendable, Equatable {
    /// Loopback unless configured: the service is meant to sit behind a gateway.
    public var host = "127.0.0.1"
    public var port = 18080
    /// Keys a client must send (`Authorization: Bearer KEY` or `X-API-Key: KEY`) on `/v1/`
    /// routes; empty: no key needed. Health and metrics routes never need one.
    public var apiKeys: [String] = []
    /// Events per second each client (its API key, or its address without one) may send.
    public var rateLimit: RateLimit?
    public var ingest = Ingest()
    public var recommendations = Recommendations()
    /// The `eddy run` processes whose throughput and lag the live page at `/` shows.
    public var pipelineMetrics: [MetricsEndpoint] = []

    /// An `eddy run` process' metrics: `http://IPv4:port/path`.
    public struct MetricsEndpoint: Sendable, Equatable {
        public let host: String
        public let port: Int
        public let path: String
        public var url: String { "http://\(host):\(port)\(path)" }

        /// nil unless `url` is `http://` with an IPv4 address, a port and an optional path.
        public init?(_ url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let rest = url.dropFirst("http://".count)
            let authority = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(authority.count)
            let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
            let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) else { return nil }
            host = String(parts[0])
            self.port = port
            self.path = path.isEmpty ? "/metrics" : String(path)
        }
    }

    public struct RateLimit: Sendable, Equatable {
        public var eventsPerSecond: Double
        /// The most events a client may send at once after being idle.
        public var burst: Double

        public init(eventsPerSecond: Double, burst: Double) {
            self.eventsPerSecond = eventsPerSecond
            self.burst = burst
        }
    }

    public struct Ingest: Sendable, Equatable {
        /// `POST /v1/events` and `/v1/events:batch`; off: those routes answer 404.
        public var enabled = true
        /// The topology whose source the events are for: its topic, key field, timestamp
        /// field and validation rules. Required when ingest is enabled.
        public var topology: String?
        /// The largest body of a batch; a single event's limit is the source's max_value_bytes.
        public var maxBodyBytes = 4 * 1024 * 1024
        public var maxBatchEvents = 10_000
        /// An event without the timestamp field gets the server's clock (epoch ms).
        public var serverTimestamp = true
        /// A publish the broker has not acknowledged within this fails with 503.
        public var publishTimeoutMs = 5_000
        /// Records waiting for the broker at most; past that requests get 503 at once.
        public var maxQueuedEvents = 100_000
        /// Bytes of request bodies in flight at most (read, validated, waiting for the
        /// broker); past that requests get 503 at once.
        public var maxInflightBytes = 256 * 1024 * 1024
        /// Partitions of the source topic when serve has to create it (it does not exist yet).
        public var partitions = 4
        /// The field whose value labels the ingest metrics.
        public var eventTypeField = "event_type"

        public init() {}
    }

    public init() {}

    /// The query routes (`/v1/recommendations`, `/v1/items/{id}/similar`, `/v1/popular`)
    /// over the state `Topologies/recs.yaml` (and `catalog.yaml`) keep in Redis.
    public struct Recommendations: Sendable, Equatable {
        public var enabled = true
        /// The namespace read (`v2`: keys `v2:…`; empty: keys without a prefix) until
        /// `eddy promote` names another in Redis (`eddy:active_namespace`), which serve follows.
        public var namespace = ""
        public var scoring = Scoring()
        public var rules = BusinessRules()
        public var defaultK = 20
        public var maxK = 100
        /// An answer not computed within this is replaced by popular items (`fallback`).
        public var budgetMs = 80
        /// How long an answer is reused for the same user, session, context item and cart
        /// version; 0: no cache.
        public var cacheTTLSeconds = 300
        public var cacheMaxEntries = 100_000
        /// How long item-level state (co-view lists, popularity, trending, catalog rows) read
        /// for one answer is reused for others (`ItemStateCache`); 0: read for every answer.
        /// A user's own keys are read for every answer either way.
        public var itemStateTTLMs = 1_000
        /// Users split between weight sets by a stable hash of user id and experiment name.
        public var experiment: Experiment?

        public init() {}
    }

    public struct Experiment: Sendable, Equatable {
        public var name: String
        public var variants: [Variant]

        public init(name: String, variants: [Variant]) {
            self.name = name
            self.variants = variants
        }
    }

    public struct Variant: Sendable, Equatable {
        public var name: String
        /// The share of users it gets, relative to the other variants' shares.
        public var share: Double
        public var scoring: Scoring

        public init(name: String, share: Double, scoring: Scoring) {
            self.name = name
            self.share = share
            self.scoring = scoring
        }
    }
}
