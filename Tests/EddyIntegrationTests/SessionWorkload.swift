@testable import EddyGen
import EddyKafka
import EddyRedis
import EddyTestSupport
import Foundation

/// Input for a session-window topology, produced by the test itself: generated clicks,
/// chunk after chunk continuing in event time, about 3% of them delayed by up to 4 minutes
/// (so they arrive out of order: within the 2-minute grace, merging sessions, or beyond it,
/// late), each sent to the partition of its user (`user % partitions`) so the reference
/// knows every partition's arrival order. The reference is `SessionReference`, per
/// partition, fed exactly what each partition received; and for the visits per item
/// (sessions re-keyed by item as records, across a repartition topic), the sessions of
/// each item's event times split at gaps, closed once every partition's stream time has
/// passed them (`itemVisits`).
final class SessionWorkload {
    static let gapMs: Int64 = 10 * 60_000
    static let graceMs: Int64 = 2 * 60_000
    /// Longer than any delay (4 minutes): no record is late to its item's visit, so an
    /// item's visits do not depend on how the source partitions interleave downstream.
    static let itemGraceMs: Int64 = 5 * 60_000
    static let partitions = 4

    let topic: String
    private let producer: KafkaProducer
    private var references = (0..<SessionWorkload.partitions).map { _ in
        SessionReference(gapMs: SessionWorkload.gapMs, graceMs: SessionWorkload.graceMs)
    }
    /// Every event's item and time, and each source partition's largest event time.
    private var itemEvents: [(item: String, time: Int64)] = []
    private var streamTimes = [Int64](repeating: .min, count: SessionWorkload.partitions)
    private var nextStart: Int64 = 1_767_225_600_000
    private var chunks = 0

    /// Items the generator draws from, and the category the catalog table gives each:
    /// the sessions' categories come from the join, not from the events.
    static let items = 2_000
    static func catalogCategory(of item: Int) -> String { "k\(item % 9)" }
    static func catalogTopic(_ topic: String) -> String { "\(topic)-catalog" }

    init(topic: String, services: LocalServices) throws {
        self.topic = topic
        let admin = try KafkaAdmin(config: services.kafkaConfig)
        try admin.createTopic(topic, partitions: Self.partitions)
        try admin.createTopic(Self.catalogTopic(topic), partitions: 1, configs: ["cleanup.policy": "compact"])
        producer = try KafkaProducer(config: services.kafkaConfig)
        for item in 0..<Self.items {
            try producer.send(topic: Self.catalogTopic(topic), key: Array("i\(item)".utf8),
                              value: Array(#"{"category":"\#(Self.catalogCategory(of: item))","name":"item \#(item)"}"#.utf8))
        }
        try producer.flush()
    }

    /// The output topics of closed sessions and of closed visits per item.
    static func closedTopic(_ topic: String) -> String { "\(topic)-closed" }
    static func itemVisitsTopic(_ topic: String) -> String { "\(topic)-item-visits" }

    /// The topology: events joined with the catalog (their category replaced by the
    /// item's), sessions kept in Redis (closed ones for an hour), every closed session
    /// counted once per user downstream — a lost or repeated close shows there — and written
    /// to an output topic; visits per item (sessions re-keyed by item: records through a
    /// repartition topic, after the join) written to an output topic and counted per item.
    static func topology(application: String, topic: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("\(application).yaml").path
        try """
            application: \(application)
            source: {topic: \(topic), key: user_id, timestamp: ts}
            tables:
              catalog: {topic: \(catalogTopic(topic))}
            nodes:
              - name: enriched
                join: {table: catalog, on: item_id, fields: [category], missing: dead_letter}
              - name: sessions
                input: enriched
                session: {group_by: [user_id], gap: 10m, grace: 2m, closed_ttl: 1h}
                to_redis:
                  - {type: hash, key: "session:{session_id}"}
                to_topic: {topic: \(closedTopic(topic)), key: "{user_id}", fields: [session_id, start, end, events]}
              - name: closed
                input: sessions
                aggregate: {group_by: [user_id], sum: [events, cart_value]}
                to_redis:
                  - {type: hash, key: "user:{user_id}:closed"}
              - name: item_visits
                input: enriched
                session: {group_by: [item_id], gap: 10m, grace: 5m}
                to_topic: {topic: \(itemVisitsTopic(topic)), key: "{item_id}", fields: [session_id, start, end, events]}
              - name: item_visit_counts
                input: item_visits
                aggregate: {group_by: [item_id], sum: [events]}
                to_redis:
                  - {type: hash, key: "item:{item_id}:visits"}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Produces `events` more events and feeds them to the reference.
    func produceChunk(_ events: Int, users: Int = 400) throws {
        var options = ClickstreamGenerator.Options()
        options.users = users
        options.items = Self.items
        options.seed = UInt64(500 + chunks)
        options.startMillis = nextStart
        options.concurrentSessions = 60
        chunks += 1
        var generator = ClickstreamGenerator(options)
        var rng = SplitMix64(seed: UInt64(900 + chunks))
        var pending: [(arrival: Int64, event: ClickstreamGenerator.Event)] = []
        for _ in 0..<events {
            let e = generator.next()
            let delay = rng.next() % 100 < 3 ? Int64(rng.next() % 240_000) : 0
            pending.append((e.timestamp + delay, e))
        }
        pending.sort { $0.arrival < $1.arrival }  // stable: ties keep generation order
        for (_, e) in pending {
            var json: [UInt8] = []
            e.appendJSON(to: &json)
            let partition = e.user % Self.partitions
            try producer.send(topic: topic, partition: Int32(partition), key: Array(e.userKey.utf8), value: json)
            itemEvents.append(("i\(e.item)", e.timestamp))
            streamTimes[partition] = max(streamTimes[partition], e.timestamp)
            references[partition].add(RefEvent(key: e.userKey, time: e.timestamp, eventType: "\(e.kind)", item: "i\(e.item)",
                                               category: Self.catalogCategory(of: e.item), price: e.priceCents.map { Double($0) / 100 }))
        }
        try producer.flush()
        nextStart = (pending.map(\.event.timestamp).max() ?? nextStart) + 1
    }

    var late: Int { references.reduce(0) { $0 + $1.late.count } }
    var closed: [RefSession] { references.flatMap(\.closed) }
    var open: [RefSession] { references.flatMap(\.open) }

    struct Visit { let item: String, start: Int64, end: Int64, events: Int }

    /// The closed visits per item: an item's event times split where two are more than the
    /// gap apart; a visit is closed when every source partition's stream time (its
    /// largest event time) is past its end + gap + grace.
    var itemVisits: [String: Visit] {
        let watermark = streamTimes.min()!
        var visits: [String: Visit] = [:]
        for (item, times) in Dictionary(grouping: itemEvents, by: \.item) {
            let sorted = times.map(\.time).sorted()
            var start = 0
            for i in sorted.indices where i == sorted.count - 1 || sorted[i + 1] - sorted[i] > Self.gapMs {
                let v = Visit(item: item, start: sorted[start], end: sorted[i], events: i - start + 1)
                if v.end + Self.gapMs + Self.itemGraceMs < watermark { visits["\(item):\(v.start)"] = v }
                start = i + 1
            }
        }
        return visits
    }

    /// Closed sessions per user, counted downstream: a lost close counts too few, a repeated
    /// one too many.
    func compare(with redis: RedisConnection) throws -> (keysChecked: Int, lost: Int, duplicated: Int) {
        var expected: [String: Int] = [:]
        for s in closed { expected[s.key, default: 0] += 1 }
        var lost = 0, duplicated = 0
        for (user, count) in expected {
            let actual = Int(UserCountsReference.hash(try redis.send("HGETALL", "user:\(user):closed"))["count"] ?? "0") ?? 0
            lost += max(count - actual, 0)
            duplicated += max(actual - count, 0)
        }
        var perItem: [String: Int] = [:]
        for v in itemVisits.values { perItem[v.item, default: 0] += 1 }
        for (item, count) in perItem {
            let actual = Int(UserCountsReference.hash(try redis.send("HGETALL", "item:\(item):visits"))["count"] ?? "0") ?? 0
            lost += max(count - actual, 0)
            duplicated += max(actual - count, 0)
        }
        return (expected.count + perItem.count, lost, duplicated)
    }

    /// The output topics against the reference: every closed session and every closed
    /// item visit once, with its start, end and event count. `skippingRepeats`: first apply
    /// the consumer rule for brokers that deliver aborted transactions
    /// (`skippingRepeatedIDs`); without it, what a plain read_committed consumer sees must
    /// already be exact.
    func compareTopics(services: LocalServices, skippingRepeats: Bool) throws -> (records: Int, lost: Int, duplicated: Int, wrong: [String]) {
        var sessions: [String: Visit] = [:]
        for s in closed { sessions[s.id] = Visit(item: s.key, start: s.start, end: s.end, events: s.events) }
        let a = try compare(topic: Self.closedTopic(topic), with: sessions, services: services, skippingRepeats: skippingRepeats)
        let b = try compare(topic: Self.itemVisitsTopic(topic), with: itemVisits, services: services, skippingRepeats: skippingRepeats)
        return (a.records + b.records, a.lost + b.lost, a.duplicated + b.duplicated, a.wrong + b.wrong)
    }

    /// One output topic against `expected` by session id (`item`: the record's key).
    private func compare(topic: String, with expected: [String: Visit], services: LocalServices,
                         skippingRepeats: Bool) throws -> (records: Int, lost: Int, duplicated: Int, wrong: [String]) {
        let all = try readTopic(topic, partitions: Self.partitions, services: services)
        let records = skippingRepeats ? skippingRepeatedIDs(all) : all
        var seen: [String: Int] = [:]
        var wrong: [String] = []
        for r in records {
            guard let json = try JSONSerialization.jsonObject(with: Data(r.value.utf8)) as? [String: Any], let id = json["session_id"] as? String else {
                wrong.append("\(topic): not a session: \(r.value)")
                continue
            }
            seen[id, default: 0] += 1
            guard let s = expected[id] else { wrong.append("\(topic): \(id): no such closed session"); continue }
            if json["start"] as? Int64 != s.start || json["end"] as? Int64 != s.end || json["events"] as? Int != s.events || r.key != s.item {
                wrong.append("\(topic): \(id): \(r.value) (key \(r.key ?? "nil")), expected start \(s.start), end \(s.end), events \(s.events)")
            }
        }
        let lost = expected.keys.filter { seen[$0] == nil }.count
        let duplicated = seen.values.reduce(0) { $0 + max($1 - 1, 0) }
        return (all.count, lost, duplicated, Array(wrong.prefix(10)))
    }

    /// What Redis holds that differs from the reference: every session (open, or closed and
    /// kept with a TTL), its features, and the per-user tallies of closed sessions.
    func differences(in redis: RedisConnection, limit: Int = 20) throws -> [String] {
        var out: [String] = []
        func check(_ session: RefSession, closed: Bool) throws {
            let key = "session:\(session.id)"
            let h = UserCountsReference.hash(try redis.send("HGETALL", key))
            let expected = session.redisFields
            for (field, value) in expected where h[field] != value {
                if field.hasSuffix("_value"), let a = Double(h[field] ?? ""), abs(a - Double(value)!) < 1e-6 { continue }
                out.append("\(key) \(field): \(h[field] ?? "nil"), expected \(value)")
            }
            if closed, case .integer(let ttl) = try redis.send("TTL", key), ttl <= 0 { out.append("\(key): closed but TTL \(ttl)") }
            if !closed, case .integer(let ttl) = try redis.send("TTL", key), ttl != -1 { out.append("\(key): open but TTL \(ttl)") }
        }
        for s in open { try check(s, closed: false) }
        for s in closed { try check(s, closed: true) }
        let sessions = open.count + closed.count
        let keys = try UserCountsReference.keyCount(redis, pattern: "session:*")
        if keys != sessions { out.append("Redis holds \(keys) session keys, the reference \(sessions) (open and closed)") }
        var tallies: [String: (count: Int, events: Int)] = [:]
        for s in closed { tallies[s.key, default: (0, 0)].count += 1; tallies[s.key]!.events += s.events }
        for (user, tally) in tallies {
            let h = UserCountsReference.hash(try redis.send("HGETALL", "user:\(user):closed"))
            if h["count"] != "\(tally.count)" || h["sum_events"] != "\(tally.events)" {
                out.append("user:\(user):closed: \(h), expected count \(tally.count), sum_events \(tally.events)")
            }
        }
        var visits: [String: (count: Int, events: Int)] = [:]
        for v in itemVisits.values { visits[v.item, default: (0, 0)].count += 1; visits[v.item]!.events += v.events }
        for (item, tally) in visits {
            let h = UserCountsReference.hash(try redis.send("HGETALL", "item:\(item):visits"))
            if h != ["count": "\(tally.count)", "sum_events": "\(tally.events)"] {
                out.append("item:\(item):visits: \(h), expected count \(tally.count), sum_events \(tally.events)")
            }
        }
        let visitKeys = try UserCountsReference.keyCount(redis, pattern: "item:*:visits")
        if visitKeys != visits.count { out.append("Redis holds \(visitKeys) item:*:visits keys, the reference \(visits.count)") }
        return Array(out.prefix(limit))
    }
}
