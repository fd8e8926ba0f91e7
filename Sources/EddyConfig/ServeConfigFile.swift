import EddyServe

/// Reads the `serve:` section of a runtime config file (the rest is `RuntimeConfigFile`'s):
///
///     serve:
///       host: 127.0.0.1            # loopback unless you mean otherwise
///       port: 18080
///       api_keys: [{env: EDDY_API_KEY}]               # secrets, from the environment or files
///       rate_limit: {events_per_second: 5000, burst: 10000}   # per client (API key or address)
///       ingest:
///         enabled: true
///         topology: Topologies/recs.yaml              # whose source the events are for
///         max_body_bytes: 4194304                     # a batch's largest body
///         max_batch_events: 10000
///         server_timestamp: true                      # add the server's time when ts is absent
///         publish_timeout: 5s                         # then 503
///         max_queued_events: 100000                   # then 503 at once
///         max_inflight_bytes: 268435456               # request bodies held at once; then 503
///         event_type_field: event_type                # labels the metrics
///         partitions: 4                               # of the source topic, if serve creates it
public enum ServeConfigFile {
    public static func load(path: String) throws -> ServeConfig {
        try parse(try readConfigFile(path), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> ServeConfig {
        let root = try YAMLField.load(text, file: file)
        var config = ServeConfig()
        guard case .mapping = root.node,
              let serve = try root.mapping(allowed: RuntimeConfigFile.sections)["serve"] else { return config }
        let s = try serve.mapping(allowed: ["host", "port", "api_keys", "rate_limit", "ingest"])
        if let v = s["host"] { config.host = try v.nonEmptyString() }
        if let v = s["port"] { config.port = try RuntimeConfigFile.port(v, allowZero: true) }
        if let v = s["api_keys"] {
            config.apiKeys = try v.sequence().map { try $0.secret() }
        }
        if let v = s["rate_limit"] {
            let r = try v.mapping(allowed: ["events_per_second", "burst"])
            guard let rate = r["events_per_second"] else { throw v.error("rate_limit needs events_per_second") }
            let perSecond = try positive(rate)
            let burst = try r["burst"].map(positive) ?? perSecond
            // Below one event no request could ever pass; tiny rates would wait for years.
            guard perSecond >= 0.001 else { throw rate.error("at least 0.001 (one event in about 17 minutes), got \(perSecond)") }
            guard burst >= 1 else { throw (r["burst"] ?? rate).error("the burst must be at least 1 event, got \(burst)") }
            config.rateLimit = .init(eventsPerSecond: perSecond, burst: burst)
        }
        if let v = s["ingest"] {
            let i = try v.mapping(allowed: ["enabled", "topology", "max_body_bytes", "max_batch_events", "server_timestamp",
                                            "publish_timeout", "max_queued_events", "max_inflight_bytes", "event_type_field", "partitions"])
            if let f = i["enabled"] { config.ingest.enabled = try f.bool() }
            if let f = i["topology"] { config.ingest.topology = try f.nonEmptyString() }
            if let f = i["max_body_bytes"] { config.ingest.maxBodyBytes = try f.positiveInt(atMost: 256 * 1024 * 1024) }
            if let f = i["max_batch_events"] { config.ingest.maxBatchEvents = try f.positiveInt(atMost: 1_000_000) }
            if let f = i["server_timestamp"] { config.ingest.serverTimestamp = try f.bool() }
            if let f = i["publish_timeout"] {
                let ms = try f.durationMilliseconds()
                // librdkafka's message.timeout.ms is a 32-bit count of milliseconds.
                guard ms <= Int64(Int32.max) else { throw f.error("at most \(Int32.max / 86_400_000) days") }
                config.ingest.publishTimeoutMs = Int(ms)
            }
            if let f = i["max_inflight_bytes"] { config.ingest.maxInflightBytes = try f.positiveInt() }
            if let f = i["max_queued_events"] { config.ingest.maxQueuedEvents = try f.positiveInt(atMost: 10_000_000) }
            if let f = i["partitions"] { config.ingest.partitions = try f.positiveInt(atMost: 10_000) }
            if let f = i["event_type_field"] { config.ingest.eventTypeField = try f.nonEmptyString() }
        }
        return config
    }

    /// Ingest needs a topology: from the file or the command line (`--topology`).
    public static func requireTopology(_ config: ServeConfig, file: String) throws {
        guard config.ingest.enabled, config.ingest.topology == nil else { return }
        throw ConfigError(file: file, line: nil, column: nil, field: "serve.ingest.topology",
                          message: "ingest needs the topology whose source it publishes to (or pass --topology, or set serve.ingest.enabled: false)")
    }

    private static func positive(_ field: YAMLField) throws -> Double {
        let n = try field.number()
        guard n > 0, n.isFinite else { throw field.error("expected a positive number, got \(n)") }
        return n
    }
}
