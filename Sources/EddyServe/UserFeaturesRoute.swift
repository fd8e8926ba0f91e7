import Foundation
import EddyRedis
import EddyStreams
import Hummingbird

/// `GET /v1/users/{id}/features`: what the topology keeps in Redis for one user — every
/// sink whose key names only the source's key field (`user:{user_id}:counts`), read whole
/// and named by its node. An unknown user has no keys: 200 with empty features. Redis
/// unreachable: 503.
struct UserFeaturesRoute {
    struct Feature: Sendable {
        let name: String
        let kind: Topology.RedisSink.Kind
        let keyTemplate: String
    }

    let features: [Feature]
    let keyField: String
    let redis: RedisPool
    /// zset and list features return at most this many entries (highest scores, newest first).
    static let maxEntries = 100

    init(topology: Topology, redis: RedisPool) {
        keyField = topology.source.keyField
        var named: [Feature] = []
        for node in topology.nodes {
            for sink in node.sinks where Self.placeholders(sink.key) == [topology.source.keyField] {
                let taken = named.filter { $0.name == node.name || $0.name.hasPrefix(node.name + "#") }.count
                named.append(Feature(name: taken == 0 ? node.name : "\(node.name)#\(taken + 1)", kind: sink.kind, keyTemplate: sink.key))
            }
        }
        features = named
        self.redis = redis
    }

    static func placeholders(_ template: String) -> [String] {
        var names: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    func add(to router: Router<ServeContext>) {
        router.get("/v1/users/:id/features") { _, context in
            // The path segment is percent-encoded (a space, a slash, non-ASCII ids).
            guard let id = RecommendationRoutes.pathID(context.parameters.get("id")) else {
                return Responses.error(.badRequest, "the user id must be 1 to \(RecommendationRoutes.maxIDLength) characters, percent-encoded in the path", extra: [("parameter", "id")])
            }
            let features = self.features
            let replies: [RedisReply]
            do {
                replies = try await redis.run { connection in
                    try connection.pipeline(features.map { Self.read($0, key: $0.keyTemplate.replacingOccurrences(of: "{\(keyField)}", with: id)) })
                }
            } catch {
                return Responses.error(.serviceUnavailable, "Redis did not answer: \(error)", headers: [.retryAfter: "1"])
            }
            var members: [(String, JSONValue)] = []
            for (feature, reply) in zip(features, replies) {
                if let value = Self.value(reply, kind: feature.kind) { members.append((feature.name, value)) }
            }
            return Responses.json(.ok, .object([(keyField, .string(id)), ("features", .object(members))]))
        }
    }

    private static func read(_ feature: Feature, key: String) -> RedisCommand {
        switch feature.kind {
        case .hash: return RedisCommand(["HGETALL", key])
        case .zset: return RedisCommand(["ZREVRANGE", key, "0", String(maxEntries - 1), "WITHSCORES"])
        case .list: return RedisCommand(["LRANGE", key, "0", String(maxEntries - 1)])
        case .string: return RedisCommand(["GET", key])
        }
    }

    /// A reply as JSON (numbers where Redis holds numbers); nil for a key that is absent.
    private static func value(_ reply: RedisReply, kind: Topology.RedisSink.Kind) -> JSONValue? {
        let items = reply.strings
        switch kind {
        case .hash:
            guard !items.isEmpty else { return nil }
            return .object(stride(from: 0, to: items.count - 1, by: 2).map { (items[$0], JSONValue.scalar(items[$0 + 1])) })
        case .zset:
            guard !items.isEmpty else { return nil }
            return .array(stride(from: 0, to: items.count - 1, by: 2).map { .object([("member", .string(items[$0])), ("score", JSONValue.scalar(items[$0 + 1]))]) })
        case .list:
            return items.isEmpty ? nil : .array(items.map { .string($0) })
        case .string:
            return reply.string.map(JSONValue.scalar)
        }
    }
}
