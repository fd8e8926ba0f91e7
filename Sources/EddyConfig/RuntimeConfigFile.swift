import EddyKafka
import EddyRedis
import EddyStreams
import Foundation

/// Reads runtime config files (configs/*.yaml): where the broker and Redis are, where state
/// lives, threads, commit interval and metrics. Every field is optional; unknown fields
/// are errors with file and line.
///
///     kafka: {bootstrap_servers: 127.0.0.1:19092, session_timeout_ms: 6000, static_membership: false,
///             transaction_step_timeout_ms: 15000, properties: {}}
///     redis: {host: 127.0.0.1, port: 16379, timeout_ms: 5000, user: eddy, password: {env: EDDY_REDIS_PASSWORD}}
///     state: {dir: state, memory_mb: 256, cache_max_entries: 1000000}
///     runtime: {threads: 1, commit_interval_ms: 1000, poll_batch_size: 4096, instance_id: web-1, repartition_purge_interval_ms: 30000,
///              stop_timeout_ms: 25000}
///     processing: {guarantee: exactly_once}
///     metrics: {port: 19464, log_interval_s: 5}
///     serve: {…}   (eddy serve: ServeConfigFile)
public enum RuntimeConfigFile {
    public static func load(path: String) throws -> RuntimeConfig {
        try parse(try readConfigFile(path), file: path)
    }

    /// The file's sections; `serve` is `ServeConfigFile`'s.
    static let sections = ["kafka", "redis", "state", "runtime", "processing", "metrics", "serve"]

    public static func parse(_ text: String, file: String) throws -> RuntimeConfig {
        let root = try YAMLField.load(text, file: file)
        let top = try root.mapping(allowed: sections)
        var config = RuntimeConfig()
        if let kafka = try top["kafka"]?.mapping(allowed: ["bootstrap_servers", "session_timeout_ms", "static_membership", "leave_group_on_close",
                                                             "transaction_step_timeout_ms", "properties"]) {
            if let v = kafka["bootstrap_servers"] { config.bootstrapServers = try v.nonEmptyString() }
            if let v = kafka["session_timeout_ms"] { config.sessionTimeoutMs = try v.positiveInt(atMost: ConfigLimits.maxSessionTimeoutMs) }
            if let v = kafka["static_membership"] { config.staticMembership = try v.bool() }
            if let v = kafka["leave_group_on_close"] { config.leaveGroupOnClose = try v.bool() }
            if let v = kafka["transaction_step_timeout_ms"] { config.transactionStepTimeoutMs = try v.positiveInt(atMost: ConfigLimits.maxStepTimeoutMs) }
            if let props = kafka["properties"] { config.kafkaProperties = try freeMapping(props) }
        }
        if let redis = try top["redis"]?.mapping(allowed: ["host", "port", "timeout_ms", "user", "password"]) {
            if let v = redis["host"] { config.redisHost = try v.nonEmptyString() }
            if let v = redis["port"] { config.redisPort = try port(v) }
            if let v = redis["user"], redis["password"] == nil { throw v.error("redis.user needs redis.password") }
            if let v = redis["password"] {
                config.redisCredentials = RedisCredentials(user: try redis["user"]?.nonEmptyString(), password: try v.secret())
            }
            if let v = redis["timeout_ms"] { config.redisTimeoutMs = try v.positiveInt(atMost: ConfigLimits.maxStepTimeoutMs) }
        }
        if let state = try top["state"]?.mapping(allowed: ["dir", "memory_mb", "cache_max_entries"]) {
            if let v = state["dir"] { config.stateDir = try v.nonEmptyString() }
            if let v = state["memory_mb"] { config.memoryBudgetMB = try v.positiveInt(atMost: ConfigLimits.maxMemoryMB) }
            if let v = state["cache_max_entries"] { config.cacheMaxEntries = try v.positiveInt() }
        }
        if let runtime = try top["runtime"]?.mapping(allowed: ["threads", "commit_interval_ms", "poll_batch_size", "instance_id", "repartition_purge_interval_ms", "stop_timeout_ms"]) {
            if let v = runtime["threads"] { config.threads = try v.positiveInt(atMost: ConfigLimits.maxThreads) }
            if let v = runtime["commit_interval_ms"] { config.commitIntervalMs = try v.positiveInt() }
            if let v = runtime["repartition_purge_interval_ms"] { config.repartitionPurgeIntervalMs = try v.positiveInt() }
            if let v = runtime["stop_timeout_ms"] { config.stopTimeoutMs = try v.positiveInt(atLeast: ConfigLimits.minStopTimeoutMs, atMost: ConfigLimits.maxStepTimeoutMs) }
            if let v = runtime["poll_batch_size"] { config.pollBatchSize = try v.positiveInt(atMost: ConfigLimits.maxPollBatchSize) }
            if let v = runtime["instance_id"] {
                let id = try v.string()
                guard !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                    throw v.error("expected letters, digits, '-', '_' or '.', got '\(id)'")
                }
                config.instanceId = id
            }
        }
        if let processing = try top["processing"]?.mapping(allowed: ["guarantee"]), let v = processing["guarantee"] {
            let name = try v.string()
            guard let guarantee = ProcessingGuarantee(rawValue: name) else {
                throw v.error("expected one of: \(ProcessingGuarantee.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
            }
            config.processingGuarantee = guarantee
        }
        if let metrics = try top["metrics"]?.mapping(allowed: ["port", "log_interval_s"]) {
            if let v = metrics["port"] { config.metricsPort = try v.string() == "off" ? nil : try port(v, allowZero: true) }
            if let v = metrics["log_interval_s"] { config.logIntervalSeconds = Double(try v.positiveInt()) }
        }
        return config
    }

    static func port(_ field: YAMLField, allowZero: Bool = false) throws -> Int {
        let p = try field.int()
        guard (allowZero ? 0 : 1)...65535 ~= p else { throw field.error("expected a port number (1-65535\(allowZero ? ", or 0 for any free port" : "")), got \(p)") }
        return p
    }

    /// A mapping of arbitrary names to scalar values (librdkafka properties).
    private static func freeMapping(_ field: YAMLField) throws -> [String: String] {
        guard case .mapping(let mapping) = field.node else { throw field.error("expected a mapping of librdkafka properties") }
        var out: [String: String] = [:]
        for (key, value) in mapping {
            guard let k = key.scalar?.string else { throw field.error("property names must be plain") }
            let property = YAMLField(file: field.file, node: value, path: field.path + [.key(k)], mark: key.mark)
            out[k] = KafkaConfig.isSecret(k) ? try property.secret() : try property.string()
        }
        return out
    }
}
