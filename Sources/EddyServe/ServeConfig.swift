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
}
