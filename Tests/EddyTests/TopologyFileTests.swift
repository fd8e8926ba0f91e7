@testable import EddyConfig
@testable import EddyStreams
import XCTest

final class TopologyFileTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try TopologyFile.parse(yaml, file: "t.yaml")
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            XCTFail("unexpected error \(error)")
            return nil
        }
    }

    func testShippedTopologiesAreValid() throws {
        let dir = Self.root.appendingPathComponent("Topologies")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertFalse(files.isEmpty)
        for file in files { XCTAssertNoThrow(try TopologyFile.load(path: dir.appendingPathComponent(file).path), file) }
    }

    func testTheSwiftDSLBuildsTheSameTopologyAsTheShippedFile() throws {
        let fromFile = try TopologyFile.load(path: Self.root.appendingPathComponent("Topologies/user-counts.yaml").path)
        let builder = StreamsBuilder(application: "user-counts")
        let events = builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["event_type"])
            .filter("events", field: "event_type", .oneOf(["view", "click", "cart", "purchase"]))
        events.aggregate("per_user", groupBy: ["user_id"], sum: ["price"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:counts", ttlSeconds: 86_400))
        events.aggregate("per_user_type", groupBy: ["user_id", "event_type"])
            .toRedis(.init(kind: .hash, key: "user:{user_id}:by_type", field: "{event_type}", value: "count", ttlSeconds: 86_400))
        XCTAssertEqual(try builder.build(), fromFile)
        XCTAssertEqual(try builder.build().describe(.text), fromFile.describe(.text))
    }

    func testANamespacePrefixesEveryRedisKeyItWrites() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Topologies/recs.yaml"), encoding: .utf8)
        let plain = try TopologyFile.parse(text, file: "recs.yaml")
        let spaced = try TopologyFile.parse(text.replacingOccurrences(of: "application: recs\n", with: "application: recs-v2\nnamespace: v2\n"), file: "recs.yaml")
        XCTAssertEqual(spaced.namespace, "v2")
        let keys = plain.nodes.flatMap { $0.sinks.map(\.key) }
        XCTAssertFalse(keys.isEmpty)
        XCTAssertEqual(spaced.nodes.flatMap { $0.sinks.map(\.key) }, keys.map { "v2:" + $0 })
        XCTAssertTrue(spaced.describe(.text).contains("(Redis keys in namespace v2)"))
        XCTAssertTrue(spaced.describe(.text).contains("v2:item:popularity"))
        let bad = error("application: a\nnamespace: \"v 2\"\nsource: {topic: t, key: user_id, timestamp: ts}\nnodes:\n  - {name: n, filter: {field: x, exists: true}}\n")
        XCTAssertEqual(bad?.line, 2)
        XCTAssertEqual(bad?.field, "namespace")
    }

    func testErrorsNameFileLineAndField() {
        // Lines 1-3 of most cases; the nodes follow from line 4.
        let header = "application: a\nsource: {topic: t, key: user_id, timestamp: ts}\nnodes:\n"
        let cases: [(String, Int, String, String)] = [
            (header + """
               - name: n
                 agregate: {group_by: [user_id]}
             """, 5, "nodes[0].agregate", "unknown field 'agregate'"),
            ("""
             application: a
             source:
               topic: t
               key: user_id
             """, 2, "source", "missing field 'timestamp'"),
            (header + """
               - name: n
                 aggregate: {group_by: [user_id]}
                 to_redis: {type: hash, key: "u:{nope}"}
             """, 6, "nodes[0].to_redis[0].key", "field 'nope' is not available here"),
            (header + """
               - name: n
                 input: missing
                 filter: {field: x, equals: y}
             """, 5, "nodes[0].input", "unknown input 'missing'"),
            (header + """
               - name: n
                 aggregate: {group_by: [user_id]}
                 to_redis: {type: set, key: "u"}
             """, 6, "nodes[0].to_redis.type", "unknown sink type 'set' (expected hash, zset, string or list)"),
            (header + """
               - name: n
                 aggregate: {group_by: [user_id]}
                 to_redis: {type: hash, key: "u", ttl: soon}
             """, 6, "nodes[0].to_redis.ttl", "expected a positive duration"),
            (header + """
               - name: n
                 aggregate:
                   group_by: [item_id]
                   weights: {field: event_type, values: {view: 1, click: lots}}
             """, 7, "nodes[0].aggregate.weights.values.click", "expected a number, got 'lots'"),
            (header + """
               - name: n
                 decay:
                   group_by: [item_id]
                   weights: {field: event_type, values: {view: 1}}
             """, 5, "nodes[0].decay", "missing field 'half_life'"),
            (header + """
               - name: n
                 decay:
                   group_by: [item_id]
                   half_life: 1h
                   weights: {field: event_type, values: {view: 1, click: 0}}
             """, 8, "nodes[0].decay.weights.values.click", "a decayed weight must be a positive number"),
            (header + """
               - name: n
                 recent: {group_by: [user_id], field: item_id, size: 0}
             """, 5, "nodes[0].recent.size", "must be positive"),
            (header + """
               - name: n
                 recent: {group_by: [user_id], field: item_id, size: 5}
                 to_redis: {type: zset, key: "r", member: "{user_id}", score: recent}
             """, 6, "nodes[0].to_redis[0].value", "a zset score must be a number"),
            // Durations whose seconds overflow Int trapped; ones Redis rejects failed mid-commit.
            (header + """
               - name: n
                 aggregate: {group_by: [user_id]}
                 to_redis: {type: hash, key: "u:{user_id}", ttl: 9999999999999999d}
             """, 6, "nodes[0].to_redis.ttl", "longer than the longest duration allowed, 100 years (36525d)"),
            (header + """
               - name: n
                 aggregate: {group_by: [user_id]}
                 to_redis: {type: hash, key: "u:{user_id}", ttl: 36526d}
             """, 6, "nodes[0].to_redis.ttl", "longer than the longest duration allowed"),
            (header + """
               - name: n
                 decay:
                   group_by: [item_id]
                   half_life: 9223372036854776s
                   weights: {field: event_type, values: {view: 1}}
             """, 7, "nodes[0].decay.half_life", "longer than the longest duration allowed"),
            // Groups that differ only in event_type would share one Redis key.
            (header + """
               - name: n
                 aggregate: {group_by: [user_id, event_type]}
                 to_redis: {type: hash, key: "u:{user_id}:by_type"}
             """, 6, "nodes[0].to_redis[0].key", "names no {event_type}: groups that differ only in event_type would overwrite each other"),
            (header + """
               - name: n
                 aggregate: {group_by: [user_id, item_id]}
                 to_redis:
                   - {type: zset, key: "u:{user_id}", member: "{item_id}", score: count}
                   - {type: string, key: "u:{item_id}", value: count}
             """, 8, "nodes[0].to_redis[1].key", "names no {user_id}"),
            ("application: a\nsource: {topic: t, key: user_id, timestamp: ts}\n", 1, "nodes", "lists no nodes"),
            ("application: a\nsource: {topic: t, key: user_id, timestamp: ts}\nnodes: []\n", 3, "nodes", "lists no nodes"),
            ("application: a\nsource: {topic: t, key: user_id, timestamp: ts, dead_letter_topic: ''}\nnodes:\n  - {name: n, filter: {field: x, exists: true}}\n",
             2, "source.dead_letter_topic", "must not be empty"),
            ("application: a\nsource: [oops\n", 3, "", "not valid YAML"),
            ("application: a\nsource: {topic: t, format: avro, key: k, timestamp: ts}\n", 2, "source.format", "unsupported format 'avro'"),
        ]
        assertRejected(cases)
    }

    func testLongestDurationIsAccepted() throws {
        let topology = try TopologyFile.parse("""
            application: a
            source: {topic: t, key: user_id, timestamp: ts}
            nodes:
              - name: n
                aggregate: {group_by: [user_id]}
                to_redis: {type: hash, key: "u:{user_id}", ttl: 36525d}
            """, file: "t.yaml")
        XCTAssertEqual(topology.nodes[0].sinks[0].ttlSeconds, ConfigLimits.maxDurationSeconds)
        XCTAssertEqual(ConfigLimits.maxDurationSeconds, 3_155_760_000, "100 Julian years")
    }

    func testRuntimeConfigRejectsEmptyAndOversizedValues() {
        let cases: [(String, String)] = [
            ("kafka:\n  bootstrap_servers: ''\n", "c.yaml:2:3: field 'kafka.bootstrap_servers': must not be empty"),
            ("kafka:\n  bootstrap_servers:\n", "c.yaml:2:3: field 'kafka.bootstrap_servers': must not be empty"),
            ("state:\n  dir: ' '\n", "c.yaml:2:3: field 'state.dir': must not be empty"),
            ("redis: {host: ''}\n", "c.yaml:1:9: field 'redis.host': must not be empty"),
            ("state:\n  memory_mb: 9000000000000\n", "c.yaml:2:3: field 'state.memory_mb': must be at most 1048576, got 9000000000000"),
            ("state:\n  memory_mb: 9e12\n", "c.yaml:2:3: field 'state.memory_mb': expected a whole number, got '9e12'"),
            ("runtime:\n  poll_batch_size: 9223372036854775807\n", "c.yaml:2:3: field 'runtime.poll_batch_size': must be at most 1048576, got 9223372036854775807"),
            ("runtime:\n  threads: 100000\n", "c.yaml:2:3: field 'runtime.threads': must be at most 256, got 100000"),
            ("kafka:\n  session_timeout_ms: 3600001\n", "c.yaml:2:3: field 'kafka.session_timeout_ms': must be at most 3600000, got 3600001"),
            ("runtime:\n  stop_timeout_ms: 3000\n", "c.yaml:2:3: field 'runtime.stop_timeout_ms': must be at least 6000, got 3000"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try RuntimeConfigFile.parse(yaml, file: "c.yaml"), yaml) {
                XCTAssertEqual(($0 as? ConfigError)?.description, expected)
            }
        }
        XCTAssertEqual(try RuntimeConfigFile.parse("state: {memory_mb: 1048576}\n", file: "c.yaml").memoryBudgetMB, 1 << 20)
    }

    func testYAMLSyntaxErrorsAreOneLineWithAPosition() {
        let cases: [(String, Int)] = [
            ("a: *nowhere\n", 1),                      // composer: undefined alias
            ("a: 1\nb: \u{7}\n", 2),                 // reader: a control character
            ("a: [1, 2\nb: 3\n", 2),                  // parser
        ]
        for (yaml, line) in cases {
            guard let e = error(yaml) else { XCTFail("accepted: \(yaml)"); continue }
            XCTAssertEqual(e.line, line, e.description)
            XCTAssertTrue(e.message.hasPrefix("not valid YAML: "), e.description)
            XCTAssertFalse(e.description.contains("\n"), e.description)
        }
    }

    func testARekeyedAggregateGetsARepartitionTopicAndWeights() throws {
        let topology = try TopologyFile.load(path: Self.root.appendingPathComponent("Topologies/user-and-item-counts.yaml").path)
        guard case .aggregate(let groupBy, _, let weights)? = topology.nodes.first(where: { $0.name == "per_item" })?.operation else {
            return XCTFail("per_item is not an aggregate")
        }
        XCTAssertEqual(groupBy, ["item_id"])
        XCTAssertEqual(weights, Topology.Weights(field: "event_type", values: [.init("view", 1), .init("click", 3), .init("cart", 5), .init("purchase", 10)]))
        XCTAssertTrue(topology.describe(.text).contains("repartition"), topology.describe(.text))
    }

    func testRecentAndDecayFromFileEqualTheSwiftDSL() throws {
        let fromFile = try TopologyFile.load(path: Self.root.appendingPathComponent("Topologies/item-popularity.yaml").path)
        let builder = StreamsBuilder(application: "item-popularity")
        let clicks = builder.stream(topic: "clicks", key: "user_id", timestamp: "ts", required: ["event_type", "item_id"])
        clicks.recent("recently_viewed", groupBy: ["user_id"], field: "item_id", size: 20)
            .toRedis(.init(kind: .string, key: "user:{user_id}:recent", value: "recent", ttlSeconds: 7 * 86_400))
        clicks.decay("popularity", groupBy: ["item_id"],
                     weights: .init(field: "event_type", values: [.init("view", 1), .init("click", 3), .init("cart", 5), .init("purchase", 10)]),
                     halfLife: .seconds(3600))
            .toRedis(.init(kind: .zset, key: "items:popular", field: "{item_id}", value: "rank"))
        XCTAssertEqual(try builder.build(), fromFile)
        let text = fromFile.describe(.text)
        XCTAssertTrue(text.contains("popularity <- source: decay by [item_id]"), text)
        XCTAssertTrue(text.contains("half-life 3600 s"), text)
        XCTAssertTrue(text.contains("re-keyed through item-popularity-popularity-repartition"), text)
        XCTAssertFalse(text.contains("recent by [user_id]: count, recent (last 20 item_id by event time) (RocksDB store), re-keyed"), text)
    }

    func testDescribeFormats() throws {
        let topology = try TopologyFile.load(path: Self.root.appendingPathComponent("Topologies/user-counts.yaml").path)
        XCTAssertTrue(topology.describe(.mermaid).hasPrefix("flowchart LR"))
        XCTAssertTrue(topology.describe(.mermaid).contains("events --> per_user"))
        XCTAssertTrue(topology.describe(.dot).contains("\"events\" -> \"per_user_type\";"))
    }

    func testRuntimeConfigParsesAndRejectsTypos() throws {
        let config = try RuntimeConfigFile.load(path: Self.root.appendingPathComponent("configs/local.yaml").path)
        XCTAssertEqual(config.bootstrapServers, "127.0.0.1:19092")
        XCTAssertEqual(config.redisPort, 16379)
        XCTAssertEqual(config.sessionTimeoutMs, 6000)
        XCTAssertThrowsError(try RuntimeConfigFile.parse("runtime:\n  thread: 2\n", file: "c.yaml")) {
            XCTAssertEqual(($0 as? ConfigError)?.description, "c.yaml:2:3: field 'runtime.thread': unknown field 'thread' (expected one of: threads, commit_interval_ms, poll_batch_size, instance_id, repartition_purge_interval_ms, stop_timeout_ms)")
        }
        XCTAssertEqual(try RuntimeConfigFile.parse("runtime: {repartition_purge_interval_ms: 250}\n", file: "c.yaml").repartitionPurgeIntervalMs, 250)
        XCTAssertEqual(try RuntimeConfigFile.parse("runtime: {stop_timeout_ms: 9000}\n", file: "c.yaml").stopTimeoutMs, 9000)
        XCTAssertThrowsError(try RuntimeConfigFile.parse("runtime: {repartition_purge_interval_ms: 0}\n", file: "c.yaml"))
        XCTAssertThrowsError(try RuntimeConfigFile.parse("redis: {port: 99999}\n", file: "c.yaml")) {
            XCTAssertTrue(($0 as? ConfigError)?.description.contains("field 'redis.port'") ?? false)
        }
        XCTAssertEqual(config.processingGuarantee, .exactlyOnce)
        XCTAssertEqual(try RuntimeConfigFile.parse("processing: {guarantee: at_least_once}\n", file: "c.yaml").processingGuarantee, .atLeastOnce)
        XCTAssertThrowsError(try RuntimeConfigFile.parse("processing:\n  guarantee: exactly-once\n", file: "c.yaml")) {
            XCTAssertEqual(($0 as? ConfigError)?.description, "c.yaml:2:3: field 'processing.guarantee': expected one of: exactly_once, at_least_once, got 'exactly-once'")
        }
        let static_ = try RuntimeConfigFile.parse("kafka: {static_membership: true}\nruntime: {instance_id: web-1}\n", file: "c.yaml")
        XCTAssertTrue(static_.staticMembership)
        XCTAssertEqual(static_.resolvedInstanceId, "web-1")
        XCTAssertThrowsError(try RuntimeConfigFile.parse("runtime:\n  instance_id: 'a b'\n", file: "c.yaml")) {
            XCTAssertTrue(($0 as? ConfigError)?.description.hasPrefix("c.yaml:2:3: field 'runtime.instance_id'") ?? false, "\($0)")
        }
        // Derived identities are stable for a state directory (across runs: the same
        // value every time, however the path is spelled) and differ between two.
        var a = RuntimeConfig(), sameDir = RuntimeConfig(), b = RuntimeConfig()
        a.stateDir = "/tmp/eddy-a"
        sameDir.stateDir = "/tmp/eddy-b/../eddy-a/"
        b.stateDir = "/tmp/eddy-b"
        XCTAssertTrue(a.resolvedInstanceId.hasSuffix("-39d9f720"), a.resolvedInstanceId)  // FNV-1a of the path
        XCTAssertEqual(sameDir.resolvedInstanceId, a.resolvedInstanceId)
        XCTAssertNotEqual(a.resolvedInstanceId, b.resolvedInstanceId)
    }

    // Session windows. The compiler does not run them yet (it rejects them), so these tests
    // read files with `decode` (no validation) and the DSL with `unvalidated()`.

    private func decodeSession(_ session: String) throws -> Topology.SessionWindow? {
        let (topology, _) = try TopologyFile.decode("""
            application: a
            source: {topic: t, key: user_id, timestamp: ts}
            nodes:
              - name: n
                session: \(session)
            """, file: "t.yaml")
        guard case .session(let window) = topology.nodes.first?.operation else { return nil }
        return window
    }

    func testShippedSessionsFileEqualsTheSwiftDSL() throws {
        let path = Self.root.appendingPathComponent("Topologies/sessions.yaml").path
        let (fromFile, _) = try TopologyFile.decode(try String(contentsOfFile: path, encoding: .utf8), file: path)
        XCTAssertEqual(fromFile.nodes.first?.operation,
                       .session(.init(groupBy: ["user_id"], gapMs: 30 * 60_000, graceMs: 5 * 60_000, closedTTLSeconds: 3600)))
        XCTAssertEqual(fromFile.nodes.first?.operation.groupBy, ["user_id"])
        let builder = StreamsBuilder(application: "sessions")
        builder.stream(topic: "clicks", key: "user_id", timestamp: "ts")
            .session("sessions", groupBy: ["user_id"], gap: .seconds(30 * 60), grace: .seconds(5 * 60), closedTTLSeconds: 3600)
            .toRedis(.init(kind: .hash, key: "session:{session_id}:features"))
        XCTAssertEqual(try builder.unvalidated(), fromFile)
        let text = fromFile.describe(.text)
        XCTAssertTrue(text.contains("sessions <- source: session(group_by: user_id, gap 30m, grace 5m), closed sessions kept 1h\n"), text)
        XCTAssertTrue(text.contains("-> redis hash session:{session_id}:features"), text)
        XCTAssertFalse(text.contains("re-keyed"), text)
        XCTAssertTrue(fromFile.describe(.mermaid).contains("session(group_by: user_id, gap 30m, grace 5m)"))
    }

    func testSessionDefaultsAndOptionalFields() throws {
        let window = try XCTUnwrap(try decodeSession("{group_by: [user_id], gap: 30m}"))
        XCTAssertEqual(window, Topology.SessionWindow(groupBy: ["user_id"], gapMs: 1_800_000))
        XCTAssertEqual(window.graceMs, 0)
        XCTAssertEqual(window.eventTypeField, "event_type")
        XCTAssertEqual(window.itemField, "item_id")
        XCTAssertEqual(window.categoryField, "category")
        XCTAssertEqual(window.priceField, "price")
        XCTAssertEqual(window.cartTypes, ["cart"])
        XCTAssertEqual(window.purchaseTypes, ["purchase"])
        XCTAssertNil(window.closedTTLSeconds)
        XCTAssertEqual(try decodeSession("""
            {group_by: [user_id, device], gap: 10m, grace: 0, event_type: kind, item: sku, category: dept, price: amount,
                       cart_types: [cart, wishlist], purchase_types: order, closed_ttl: 7d}
            """),
            Topology.SessionWindow(groupBy: ["user_id", "device"], gapMs: 600_000, graceMs: 0, eventTypeField: "kind", itemField: "sku",
                                   categoryField: "dept", priceField: "amount", cartTypes: ["cart", "wishlist"],
                                   purchaseTypes: ["order"], closedTTLSeconds: 7 * 86_400))
        let builder = StreamsBuilder(application: "a")
        builder.stream(topic: "t", key: "user_id", timestamp: "ts")
            .session("n", groupBy: ["user_id", "device"], gap: .seconds(600), closedTTLSeconds: 7 * 86_400, eventType: "kind", item: "sku",
                     category: "dept", price: "amount", cartTypes: ["cart", "wishlist"], purchaseTypes: ["order"])
        XCTAssertEqual(try builder.unvalidated().nodes[0].operation, .session(try XCTUnwrap(try decodeSession("""
            {group_by: [user_id, device], gap: 10m, event_type: kind, item: sku, category: dept, price: amount,
                       cart_types: [cart, wishlist], purchase_types: order, closed_ttl: 7d}
            """))))
    }

    func testSessionDurationsTakeMilliseconds() throws {
        let gaps: [(String, Int64)] = [("500ms", 500), ("90s", 90_000), ("30m", 1_800_000), ("24h", 86_400_000), ("7d", 604_800_000),
                                       ("90", 90_000), ("1ms", 1), ("36525d", 3_155_760_000_000)]
        for (text, ms) in gaps {
            XCTAssertEqual(try decodeSession("{group_by: [user_id], gap: \(text)}")?.gapMs, ms, text)
        }
        let graces: [(String, Int64)] = [("0", 0), ("0s", 0), ("0ms", 0), ("250ms", 250), ("5m", 300_000), ("2", 2000)]
        for (text, ms) in graces {
            XCTAssertEqual(try decodeSession("{group_by: [user_id], gap: 1s, grace: \(text)}")?.graceMs, ms, text)
        }
        let builder = StreamsBuilder(application: "a")
        builder.stream(topic: "t", key: "user_id", timestamp: "ts")
            .session("n", groupBy: ["user_id"], gap: .milliseconds(1500), grace: .milliseconds(250))
        XCTAssertEqual(try builder.unvalidated().nodes[0].operation, .session(.init(groupBy: ["user_id"], gapMs: 1500, graceMs: 250)))
        XCTAssertTrue(try builder.unvalidated().describe().contains("session(group_by: user_id, gap 1500ms, grace 250ms), closed sessions deleted"))
        XCTAssertEqual(Topology.describe(ms: 0), "0s")
        XCTAssertEqual(Topology.describe(ms: 90_000), "90s")
        XCTAssertEqual(Topology.describe(ms: 86_400_000), "1d")
    }

    func testSessionErrorsNameFileLineAndField() {
        let header = "application: a\nsource: {topic: t, key: user_id, timestamp: ts}\nnodes:\n"
        let cases: [(String, Int, String, String)] = [
            (header + """
               - name: n
                 session: {group_by: [user_id], gap: 30m, gapp: 1m}
             """, 5, "nodes[0].session.gapp", "unknown field 'gapp' (expected one of: group_by, gap, grace, closed_ttl"),
            (header + """
               - name: n
                 session: {group_by: [user_id], grace: 1m}
             """, 5, "nodes[0].session", "missing field 'gap'"),
            (header + """
               - name: n
                 session: {gap: 1m}
             """, 5, "nodes[0].session", "missing field 'group_by'"),
            (header + """
               - name: n
                 session:
                   group_by: [user_id]
                   gap: 0
             """, 7, "nodes[0].session.gap", "expected a positive duration like 500ms, 90s, 30m, 24h or 7d, got '0'"),
            (header + """
               - name: n
                 session:
                   group_by: [user_id]
                   gap: 0ms
             """, 7, "nodes[0].session.gap", "expected a positive duration"),
            (header + """
               - name: n
                 session:
                   group_by: [user_id]
                   gap: 1.5s
             """, 7, "nodes[0].session.gap", "got '1.5s'"),
            (header + """
               - name: n
                 session:
                   group_by: [user_id]
                   gap: 30m
                   grace: -1s
             """, 8, "nodes[0].session.grace", "expected a duration like 0s, 500ms, 90s, 30m, 24h or 7d, got '-1s'"),
            (header + """
               - name: n
                 session:
                   group_by: [user_id]
                   gap: 36526d
             """, 7, "nodes[0].session.gap", "longer than the longest duration allowed, 100 years (36525d)"),
            (header + """
               - name: n
                 session:
                   group_by: [user_id]
                   gap: 1s
                   grace: 9223372036854775807s
             """, 8, "nodes[0].session.grace", "longer than the longest duration allowed"),
            (header + """
               - name: n
                 session: {group_by: [user_id], gap: 30m, closed_ttl: 0}
             """, 5, "nodes[0].session.closed_ttl", "expected a positive duration"),
            (header + """
               - name: n
                 session: {group_by: [user_id], gap: 30m, event_type: ''}
             """, 5, "nodes[0].session.event_type", "must not be empty"),
            (header + """
               - name: n
                 aggregate: {group_by: [user_id]}
                 session: {group_by: [user_id], gap: 30m}
             """, 6, "nodes[0].session", "a node does one thing: it has both 'aggregate' and 'session'"),
        ]
        assertRejected(cases)
    }

    /// Each YAML text is rejected with an error naming t.yaml, the line and the field.
    private func assertRejected(_ cases: [(String, Int, String, String)], file: StaticString = #filePath, line testLine: UInt = #line) {
        for (yaml, line, field, message) in cases {
            guard let e = error(yaml) else { XCTFail("accepted:\n\(yaml)", file: file, line: testLine); continue }
            XCTAssertEqual(e.file, "t.yaml")
            XCTAssertEqual(e.line, line, e.description)
            XCTAssertEqual(e.field, field, e.description)
            XCTAssertTrue(e.message.contains(message), e.description)
            XCTAssertTrue(e.description.hasPrefix("t.yaml:\(line):"), e.description)
        }
    }
}
