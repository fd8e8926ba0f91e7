import EddyRecs
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
///       pipeline_metrics: ["http://127.0.0.1:19464/metrics"]   # eddy run processes the page at / shows
///       recommendations:                              # the query routes (on by default)
///         enabled: true
///         namespace: ""                               # until eddy promote names one (v2: keys v2:…)
///         k: 20                                       # when the request does not say
///         max_k: 100
///         budget: 80ms                                # then popular items, "fallback": true
///         cache: {ttl: 5m, max_entries: 100000}       # ttl: 0s switches the cache off
///         item_state_ttl: 1s                          # co-view, popularity, catalog reused this long; 0s: read per answer
///         weights: {co_view: 1, popularity: 0.001, trending: 0, category: 0.5, model: 1, cosine: false}
///         rules: {in_stock_only: true, min_margin: 0.1, exclude_categories: [c3],
///                 max_per_category: 3, unknown_items: serve}          # or drop
///         experiment:
///           name: blend-vs-popular
///           variants:
///             - {name: control, share: 1, popularity_only: true}
///             - {name: blend, share: 1, weights: {co_view: 1, category: 0.5}}
public enum ServeConfigFile {
    public static func load(path: String) throws -> ServeConfig {
        try parse(try readConfigFile(path), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> ServeConfig {
        let root = try YAMLField.load(text, file: file)
        var config = ServeConfig()
        guard case .mapping = root.node,
              let serve = try root.mapping(allowed: RuntimeConfigFile.sections)["serve"] else { return config }
        let s = try serve.mapping(allowed: ["host", "port", "api_keys", "rate_limit", "ingest", "recommendations", "pipeline_metrics"])
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
        if let v = s["recommendations"] { config.recommendations = try recommendations(v) }
        if let v = s["pipeline_metrics"] {
            config.pipelineMetrics = try v.sequence().map { f in
                let url = try f.string()
                guard let endpoint = ServeConfig.MetricsEndpoint(url) else { throw f.error("expected http://IPv4:port[/path] (an eddy run's metrics), got '\(url)'") }
                return endpoint
            }
        }
        return config
    }

    private static func recommendations(_ field: YAMLField) throws -> ServeConfig.Recommendations {
        var out = ServeConfig.Recommendations()
        let r = try field.mapping(allowed: ["enabled", "namespace", "k", "max_k", "budget", "cache", "item_state_ttl", "weights", "rules", "experiment"])
        if let f = r["enabled"] { out.enabled = try f.bool() }
        if let f = r["namespace"] {
            out.namespace = try f.string()
            guard out.namespace.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw f.error("a namespace may contain only ASCII letters, digits, '-', '_' and '.', got '\(out.namespace)'")
            }
        }
        if let f = r["max_k"] { out.maxK = try f.positiveInt(atMost: 1000) }
        if let f = r["k"] { out.defaultK = try f.positiveInt() }
        if out.defaultK > out.maxK { throw (r["k"] ?? r["max_k"]!).error("k (\(out.defaultK)) must not exceed max_k (\(out.maxK))") }
        if let f = r["budget"] {
            let ms = try f.durationMilliseconds()
            guard ms <= 60_000 else { throw f.error("at most 60s") }
            out.budgetMs = Int(ms)
        }
        if let f = r["cache"] {
            let c = try f.mapping(allowed: ["ttl", "max_entries"])
            if let t = c["ttl"] {
                let ms = try t.durationMilliseconds(allowZero: true)
                guard ms == 0 || ms >= 1000 else { throw t.error("a cache TTL is whole seconds (0s: no cache), got \(ms) ms") }
                out.cacheTTLSeconds = Int(ms / 1000)
            }
            if let m = c["max_entries"] { out.cacheMaxEntries = try m.positiveInt(atMost: 100_000_000) }
        }
        if let f = r["item_state_ttl"] {
            let ms = try f.durationMilliseconds(allowZero: true)
            guard ms <= 60_000 else { throw f.error("at most 60s (item-level state older than that would serve a stale catalog), got \(ms) ms") }
            out.itemStateTTLMs = Int(ms)
        }
        if let f = r["weights"] { out.scoring = try scoring(f, base: out.scoring) }
        if let f = r["rules"] {
            let rules = try f.mapping(allowed: ["in_stock_only", "min_margin", "exclude_categories", "max_per_category", "unknown_items"])
            if let v = rules["in_stock_only"] { out.rules.inStockOnly = try v.bool() }
            if let v = rules["min_margin"] { out.rules.minMargin = try v.number() }
            if let v = rules["exclude_categories"] { out.rules.excludedCategories = Set(try v.strings()) }
            if let v = rules["max_per_category"] { out.rules.maxPerCategory = try v.positiveInt() }
            if let v = rules["unknown_items"] {
                let text = try v.string()
                guard let policy = BusinessRules.UnknownItems(rawValue: text) else {
                    throw v.error("expected one of \(BusinessRules.UnknownItems.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
                }
                out.rules.unknownItems = policy
            }
        }
        if let f = r["experiment"] {
            let e = try f.mapping(allowed: ["name", "variants"])
            guard let name = e["name"], let variants = e["variants"] else { throw f.error("an experiment needs a name and variants") }
            var list: [ServeConfig.Variant] = []
            for v in try variants.sequence() {
                let m = try v.mapping(allowed: ["name", "share", "weights", "popularity_only"])
                guard let vname = m["name"] else { throw v.error("a variant needs a name") }
                let variantName = try vname.nonEmptyString()
                if list.contains(where: { $0.name == variantName }) { throw vname.error("duplicate variant name '\(variantName)'") }
                let share = try m["share"].map(positive) ?? 1
                var scoring = out.scoring
                if let p = m["popularity_only"], try p.bool() {
                    if m["weights"] != nil { throw p.error("a variant has weights or popularity_only, not both") }
                    scoring = .popularityOnly
                }
                if let w = m["weights"] { scoring = try Self.scoring(w, base: out.scoring) }
                list.append(.init(name: variantName, share: share, scoring: scoring))
            }
            guard !list.isEmpty else { throw variants.error("an experiment needs at least one variant") }
            out.experiment = .init(name: try name.nonEmptyString(), variants: list)
        }
        return out
    }

    private static func scoring(_ field: YAMLField, base: Scoring) throws -> Scoring {
        var scoring = base
        let w = try field.mapping(allowed: ["co_view", "popularity", "trending", "category", "model", "cosine"])
        func weight(_ name: String) throws -> Double? {
            guard let f = w[name] else { return nil }
            let n = try f.number()
            guard n >= 0, n.isFinite else { throw f.error("a weight is a number of at least 0, got \(n)") }
            return n
        }
        if let v = try weight("co_view") { scoring.coView = v }
        if let v = try weight("popularity") { scoring.popularity = v }
        if let v = try weight("trending") { scoring.trending = v }
        if let v = try weight("category") { scoring.category = v }
        if let v = try weight("model") { scoring.model = v }
        if let f = w["cosine"] { scoring.cosine = try f.bool() }
        return scoring
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
