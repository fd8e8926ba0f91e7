import ArgumentParser
import EddyConfig
import EddyRedis
import EddyServe

struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make NAMESPACE the state eddy serve answers from (every serve follows within a second, no restart).",
        discussion: """
            A replay builds a namespace beside the live one: a copy of the topology with its own application id and \
            `namespace: v2` writes its keys as v2:… (the catalog too, if the rules read it). Once it has caught up, \
            `eddy promote v2` switches serve to it in one Redis SET (key eddy:active_namespace); `--none` goes back to \
            keys without a prefix. Refuses a namespace that holds no keys, unless --force.
            """)

    @Argument(help: "The namespace (letters, digits, '-', '_', '.').") var namespace: String?
    @Flag(help: "Answer from keys without a namespace prefix.") var none = false
    @Flag(help: "Promote even if the namespace holds no keys yet.") var force = false
    @Option(help: "The runtime config file (names Redis).") var config: String = "configs/local.yaml"

    func validate() throws {
        switch (namespace, none) {
        case (nil, false): throw ValidationError("name the namespace to promote, or --none")
        case (_?, true): throw ValidationError("a namespace or --none, not both")
        case (let ns?, false) where ns.isEmpty || !ns.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }):
            throw ValidationError("a namespace may contain only ASCII letters, digits, '-', '_' and '.', got '\(ns)'")
        default: break
        }
    }

    func run() throws {
        let runtime = try RuntimeConfigFile.load(path: config)
        let redis = try RedisConnection(host: runtime.redisHost, port: runtime.redisPort, timeoutMs: runtime.redisTimeoutMs, credentials: runtime.redisCredentials)
        let target = namespace ?? ""
        if !target.isEmpty, !force, try !holdsKeys(redis, namespace: target) {
            throw ValidationError("namespace \(target) holds no keys in Redis: run a topology with `namespace: \(target)` first, or pass --force")
        }
        let previous = try redis.send("SET", ServeNamespace.activeKey, target, "GET")
        if let error = previous.firstError { throw ValidationError("Redis refused: \(error)") }
        let was = previous.string.map { $0.isEmpty ? "(none)" : $0 } ?? "(none)"
        print("eddy serve now answers from namespace \(target.isEmpty ? "(none)" : target) (was \(was))")
    }

    /// Whether any key starts with `namespace:` (SCAN until one is found or the scan ends).
    private func holdsKeys(_ redis: RedisConnection, namespace: String) throws -> Bool {
        var cursor = "0"
        repeat {
            let reply = try redis.send("SCAN", cursor, "MATCH", "\(namespace):*", "COUNT", "1000")
            if let error = reply.firstError { throw ValidationError("Redis refused SCAN: \(error)") }
            guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].string else { return false }
            if !parts[1].strings.isEmpty { return true }
            cursor = next
        } while cursor != "0"
        return false
    }
}
