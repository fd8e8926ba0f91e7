import EddyKafka
import EddyRedis
import Foundation
import XCTest

/// `eddy serve`'s event ingest against the real broker and Redis: posted events reach Redis
/// through `eddy run` exactly as the same events produced directly; every refusal has its
/// status and reason; a broker that goes away gives 503s in time and loses nothing accepted.
final class IngestIntegrationTests: XCTestCase {
    func testEventsPostedOneByOneAndInBatchesGiveTheStateOfTheSameEventsProducedDirectly() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let direct = try userCountsTopology(application: "counts-direct", topic: "clicks-direct", in: services.workDir)
        let posted = try userCountsTopology(application: "counts-posted", topic: "clicks-posted", in: services.workDir)
        let config = try services.writeRuntimeConfig(name: "run")
        let jsonl = services.workDir.appendingPathComponent("events.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "2000", "--users", "150", "--seed", "21", "--topic", "clicks-direct",
                                   "--partitions", "4", "--out", jsonl, "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let lines = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n").map(String.init)

        let serve = try ServeProcess(config: try services.writeServeConfig(name: "serve", topology: posted))
        for line in lines[0..<300] {
            let answer = try XCTUnwrap(serve.post("/v1/events", line))
            XCTAssertEqual(answer.status, 202, answer.body)
            XCTAssertEqual(answer.json["accepted"] as? Int, 1)
        }
        // The rest in batches, JSON arrays and NDJSON in turn, each with one bad event inside.
        let bad = #"{"event_type":"view","ts":1767225600000}"#
        var batches = 0
        for start in stride(from: 300, to: lines.count, by: 170) {
            var events = Array(lines[start..<min(start + 170, lines.count)])
            let badIndex = batches % events.count
            events.insert(bad, at: badIndex)
            let body = batches % 2 == 0 ? "[" + events.joined(separator: ",\n") + "]" : events.joined(separator: "\n")
            let answer = try XCTUnwrap(serve.post("/v1/events:batch", body))
            XCTAssertEqual(answer.status, 202, answer.body)
            XCTAssertEqual(answer.json["accepted"] as? Int, events.count - 1, answer.body)
            let rejected = try XCTUnwrap(answer.json["rejected"] as? [[String: Any]])
            XCTAssertEqual(rejected.count, 1)
            XCTAssertEqual(rejected.first?["index"] as? Int, badIndex)
            XCTAssertEqual(rejected.first?["reason"] as? String, "missing_field")
            XCTAssertEqual(rejected.first?["message"] as? String, "missing field 'user_id'")
            batches += 1
        }
        XCTAssertEqual(serve.metric("eddy_ingest_events_accepted_total"), Double(lines.count))
        XCTAssertEqual(serve.metric("eddy_ingest_events_rejected_total", [#"reason="missing_field""#, #"event_type="view""#]), Double(batches))

        // Keyed by user_id as a producer keys them: each user's events sit in the same
        // partition in both topics.
        let directRecords = try readTopic("clicks-direct", partitions: 4, services: services)
        let postedRecords = try readTopic("clicks-posted", partitions: 4, services: services)
        XCTAssertEqual(postedRecords.count, lines.count)
        func partitions(_ records: [ReadRecord]) -> [String: Set<Int32>] {
            records.reduce(into: [:]) { $0[$1.key ?? "none", default: []].insert($1.partition) }
        }
        XCTAssertEqual(partitions(postedRecords), partitions(directRecords))

        let reference = try UserCountsReference(jsonl: jsonl)
        let redis = try services.redis()
        func runAndDump(_ topology: String) throws -> String {
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(try reference.differences(in: redis), [], topology)
            let dump = try EddyCLI.run(["dump", topology, "--config", config])
            XCTAssertEqual(dump.status, 0, dump.stderr)
            return dump.stdout
        }
        let directDump = try runAndDump(direct)
        _ = try redis.send("FLUSHALL")
        let postedDump = try runAndDump(posted)
        XCTAssertFalse(postedDump.isEmpty)
        XCTAssertEqual(postedDump, directDump)

        // Each user's state through GET /v1/users/{id}/features, against the reference.
        func featuresDifferences() throws -> [String] {
            var diffs: [String] = []
            for user in reference.count.keys.sorted() {
                let answer = try XCTUnwrap(serve.request("GET", "/v1/users/\(user)/features"))
                guard answer.status == 200, let features = answer.json["features"] as? [String: Any] else {
                    diffs.append("\(user): \(answer.status) \(answer.body)")
                    continue
                }
                let counts = features["per_user"] as? [String: Any]
                if (counts?["count"] as? Int) != reference.count[user] { diffs.append("\(user) count: \(answer.body)") }
                if abs(((counts?["sum_price"] as? NSNumber)?.doubleValue ?? -1) - (reference.sumPrice[user] ?? 0)) > 1e-6 {
                    diffs.append("\(user) sum_price: \(answer.body)")
                }
                let types = (features["per_user_type"] as? [String: Any])?.compactMapValues { $0 as? Int }
                if types != reference.byType[user] { diffs.append("\(user) by type: \(answer.body)") }
            }
            return diffs
        }
        XCTAssertEqual(try featuresDifferences(), [])
        let unknown = try XCTUnwrap(serve.request("GET", "/v1/users/nobody/features"))
        XCTAssertEqual(unknown.status, 200)
        XCTAssertEqual((unknown.json["features"] as? [String: Any])?.count, 0, "an unknown user has no features: \(unknown.body)")
        // Redis gone: 503, and served again once it is back.
        services.stopRedis()
        let down = try XCTUnwrap(serve.request("GET", "/v1/users/\(reference.count.keys.first!)/features"))
        XCTAssertEqual(down.status, 503, down.body)
        try services.restartRedis(withData: true)
        XCTAssertEqual(try featuresDifferences(), [])
        XCTAssertGreaterThanOrEqual(serve.metric("eddy_http_requests_total", [#"route="/v1/users/{id}/features""#, #"status="503""#]), 1)
        XCTAssertEqual(try serve.stop(), 0, "SIGTERM stops serve cleanly")
    }

    func testEveryRefusalHasItsStatusAndReason() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let shipped = try userCountsTopology(application: "counts-refusals", topic: "clicks-refusals", in: services.workDir)
        let topology = try String(contentsOfFile: shipped, encoding: .utf8)
            .replacingOccurrences(of: "  required: [event_type]", with: "  required: [event_type]\n  max_value_bytes: 300")
        try topology.write(toFile: shipped, atomically: true, encoding: .utf8)
        let config = try services.writeServeConfig(name: "serve", topology: shipped, serve: "api_keys: [{env: EDDY_TEST_INGEST_KEY}]",
                                                   ingest: "max_body_bytes: 2000\nmax_batch_events: 5")
        let serve = try ServeProcess(config: config, environment: ["EDDY_TEST_INGEST_KEY": "secret-1"])
        let key = ["X-API-Key": "secret-1"]
        let good = #"{"user_id":"u1","event_type":"view","ts":1767225600000}"#

        XCTAssertEqual(serve.post("/v1/events", good)?.status, 401, "no key")
        XCTAssertEqual(serve.post("/v1/events", good, headers: ["Authorization": "Bearer wrong"])?.status, 401)
        XCTAssertEqual(serve.post("/v1/events", good, headers: ["Authorization": "Bearer secret-1"])?.status, 202)
        XCTAssertEqual(serve.request("GET", "/healthz")?.status, 200, "probes need no key")
        XCTAssertEqual(serve.request("GET", "/metrics")?.status, 200)

        let single: [(body: [UInt8], reason: String, message: String)] = [
            (Array("not json".utf8), "invalid_json", "invalid JSON"),
            (Array(#"{"event_type":"view","ts":1}"#.utf8), "missing_field", "missing field 'user_id'"),
            (Array(#"{"user_id":"u1","event_type":"view","ts":"noon"}"#.utf8), "wrong_type", "field 'ts' is a string"),
            (Array(#"{"user_id":"u1","event_type":"view","ts":1.7e18}"#.utf8), "out_of_range", "field 'ts' is 1.7e18"),
            (Array(#"{"user_id":"u"#.utf8) + [0xFF] + Array(#"","event_type":"view","ts":1}"#.utf8), "invalid_utf8", "invalid UTF-8"),
        ]
        for (body, reason, message) in single {
            let answer = try XCTUnwrap(serve.request("POST", "/v1/events", body: body, headers: key))
            XCTAssertEqual(answer.status, 400, answer.body)
            let rejected = (answer.json["rejected"] as? [[String: Any]])?.first
            XCTAssertEqual(rejected?["reason"] as? String, reason)
            XCTAssertTrue((rejected?["message"] as? String)?.contains(message) == true, answer.body)
            XCTAssertTrue(((answer.json["error"] as? [String: Any])?["message"] as? String)?.contains(message) == true, answer.body)
        }
        let large = #"{"user_id":"u1","event_type":"view","ts":1,"note":""# + String(repeating: "x", count: 400) + #""}"#
        XCTAssertEqual(serve.post("/v1/events", large, headers: key)?.status, 413, "over the source's max_value_bytes")
        XCTAssertEqual(serve.post("/v1/events:batch", "[" + Array(repeating: large, count: 5).joined(separator: ",") + "]", headers: key)?.status, 413,
                       "over max_body_bytes")
        let six = try XCTUnwrap(serve.post("/v1/events:batch", Array(repeating: good, count: 6).joined(separator: "\n"), headers: key))
        XCTAssertEqual(six.status, 413, six.body)
        XCTAssertTrue(six.body.contains("max_batch_events"), six.body)
        XCTAssertEqual(serve.post("/v1/events:batch", "[" + good + ",", headers: key)?.status, 400, "an unclosed array")
        XCTAssertEqual(serve.post("/v1/events:batch", "\n\n", headers: key)?.status, 400, "no events")
        let mixed = try XCTUnwrap(serve.post("/v1/events:batch", "[\(good),\(large),\(good)]".replacingOccurrences(of: String(repeating: "x", count: 400), with: String(repeating: "x", count: 290)), headers: key))
        XCTAssertEqual(mixed.status, 202, mixed.body)
        XCTAssertEqual(mixed.json["accepted"] as? Int, 2)
        XCTAssertEqual((mixed.json["rejected"] as? [[String: Any]])?.first?["reason"] as? String, "too_large")
        XCTAssertEqual((mixed.json["rejected"] as? [[String: Any]])?.first?["index"] as? Int, 1)
        // An event without ts gets the server's time.
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertEqual(serve.post("/v1/events", #"{"user_id":"stamped","event_type":"view"}"#, headers: key)?.status, 202)
        let stamped = try readTopic("clicks-refusals", partitions: 4, services: services).first { $0.key == "stamped" }
        let ts = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(stamped).value.utf8)) as? [String: Any])?["ts"] as? Int64)
        XCTAssertTrue((before - 1000)...(before + 60_000) ~= ts, "\(ts)")

        for (reason, count) in [("invalid_json", 1.0), ("missing_field", 1), ("wrong_type", 1), ("out_of_range", 1), ("invalid_utf8", 1), ("too_large", 1)] {
            XCTAssertEqual(serve.metric("eddy_ingest_events_rejected_total", ["reason=\"\(reason)\""]), count, reason)
        }
        XCTAssertEqual(try serve.stop(), 0)

        // The rate limit (per address here: no keys): a batch beyond the burst can never
        // fit (413); then single events until the bucket is empty (429, Retry-After).
        let limitedConfig = try services.writeServeConfig(name: "limited", topology: shipped, serve: "rate_limit: {events_per_second: 5, burst: 8}",
                                                          ingest: "max_batch_events: 10")
        let limitedServe = try ServeProcess(config: limitedConfig)
        let beyond = try XCTUnwrap(limitedServe.post("/v1/events:batch", Array(repeating: good, count: 9).joined(separator: "\n")))
        XCTAssertEqual(beyond.status, 413, beyond.body)
        XCTAssertTrue(beyond.body.contains("burst"), beyond.body)
        var limited: ServeProcess.Answer?
        for _ in 0..<30 {
            // A new key each time must not buy a new bucket: keys are not checked here.
            let answer = try XCTUnwrap(limitedServe.post("/v1/events", good, headers: ["X-API-Key": UUID().uuidString]))
            if answer.status == 429 { limited = answer; break }
            XCTAssertEqual(answer.status, 202, answer.body)
        }
        let refusal = try XCTUnwrap(limited, "a burst of 8 at 5/s must run out within 30 quick requests")
        XCTAssertNotNil(refusal.headers["retry-after"].flatMap(Int.init), "\(refusal.headers)")
        XCTAssertGreaterThanOrEqual(limitedServe.metric("eddy_ingest_rate_limited_total"), 1)
        XCTAssertEqual(try limitedServe.stop(), 0)

        // Ingest switched off: the routes are not there.
        let off = try services.writeServeConfig(name: "off", topology: shipped, ingest: "enabled: false")
        let quiet = try ServeProcess(config: off)
        XCTAssertEqual(quiet.post("/v1/events", good)?.status, 404)
        XCTAssertEqual(quiet.request("GET", "/readyz")?.status, 200)
        XCTAssertEqual(try quiet.stop(), 0)
    }

    func testBrokerGoneGives503InTimeAndNoAcceptedEventIsLost() throws {
        let services = try LocalServices(faultProxies: true)
        defer { services.stop() }
        let topology = try userCountsTopology(application: "counts-outage", topic: "clicks-outage", in: services.workDir)
        let serve = try ServeProcess(config: try services.writeServeConfig(name: "serve", topology: topology, ingest: "publish_timeout: 2s"))
        func event(_ n: Int) -> String { #"{"user_id":"u\#(n % 37)","event_type":"view","item_id":"e\#(n)","ts":\#(1767225600000 + n)}"# }
        var accepted: [Int] = []
        var possiblyWritten: [Int] = []
        var next = 0
        func post() throws -> ServeProcess.Answer {
            let n = next
            next += 1
            let started = Date()
            let answer = try XCTUnwrap(serve.post("/v1/events", event(n), timeout: 30))
            let seconds = Date().timeIntervalSince(started)
            XCTAssertLessThan(seconds, 2 + 2.5, "answered within publish_timeout (2 s) and slack: \(answer.status) after \(seconds) s")
            switch answer.status {
            case 202: accepted.append(n)
            case 503:
                let failed = try XCTUnwrap((answer.json["failed"] as? [[String: Any]])?.first, answer.body)
                if failed["possibly_written"] as? Bool == true { possiblyWritten.append(n) }
                XCTAssertEqual(answer.headers["retry-after"], "1")
            default: XCTFail("\(answer.status): \(answer.body)")
            }
            return answer
        }
        for _ in 0..<50 { XCTAssertEqual(try post().status, 202) }

        try XCTUnwrap(services.brokerProxy).set(.drop)
        var unavailable = 0
        let outageEnds = Date().addingTimeInterval(8)
        while Date() < outageEnds { if try post().status == 503 { unavailable += 1 } }
        XCTAssertGreaterThan(unavailable, 0, "a broker that resets every connection must give 503s")
        XCTAssertEqual(serve.request("GET", "/readyz")?.status, 503, "not ready while the broker refuses")
        XCTAssertGreaterThanOrEqual(serve.metric("eddy_ingest_publish_failures_total"), Double(unavailable))
        // Tansu 0.6.0 fences the idempotent producer once its records timed out (every later
        // record failed with PRODUCER_FENCED): serve must have replaced it to recover.

        try XCTUnwrap(services.brokerProxy).set(.pass)
        let back = Date().addingTimeInterval(60)
        var last = try post()
        while last.status != 202 {
            guard Date() < back else { throw ServiceError("the broker is back, yet events are still refused: \(last.status) \(last.body)") }
            usleep(100_000)
            last = try post()
        }
        for _ in 0..<50 { XCTAssertEqual(try post().status, 202) }
        XCTAssertEqual(serve.request("GET", "/readyz")?.status, 200)
        XCTAssertGreaterThanOrEqual(serve.metric("eddy_ingest_producer_replacements_total"), 1, "the fenced producer was replaced")
        XCTAssertEqual(try serve.stop(), 0)

        let items = try readTopic("clicks-outage", partitions: 4, services: services).map { record -> Int in
            let object = try JSONSerialization.jsonObject(with: Data(record.value.utf8)) as! [String: Any]
            return Int((object["item_id"] as! String).dropFirst())!
        }
        let counts = items.reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
        for n in accepted { XCTAssertEqual(counts[n], 1, "accepted event \(n) must be on the broker once") }
        let unexpected = Set(counts.keys).subtracting(accepted).subtracting(possiblyWritten)
        XCTAssertEqual(unexpected, [], "only accepted events, and refused ones that said possibly_written, are on the broker")
        XCTAssertEqual(counts.values.filter { $0 > 1 }.count, 0, "the idempotent producer writes nothing twice")
    }

    func testServeStartedBeforeTheBrokerCreatesTheTopicOnceTheBrokerAnswers() throws {
        let services = try LocalServices(faultProxies: true)
        defer { services.stop() }
        let topology = try userCountsTopology(application: "counts-late", topic: "clicks-late", in: services.workDir)
        try XCTUnwrap(services.brokerProxy).set(.drop)
        let serve = try ServeProcess(config: try services.writeServeConfig(name: "serve", topology: topology, ingest: "publish_timeout: 2s"))
        let event = #"{"user_id":"u1","event_type":"view","ts":1767225600000}"#
        let early = try XCTUnwrap(serve.post("/v1/events", event))
        XCTAssertEqual(early.status, 503, early.body)
        XCTAssertTrue(early.body.contains("not known to exist yet"), early.body)
        try XCTUnwrap(services.brokerProxy).set(.pass)
        let deadline = Date().addingTimeInterval(60)
        var answer = try XCTUnwrap(serve.post("/v1/events", event))
        while answer.status != 202 {
            guard Date() < deadline else { throw ServiceError("the broker answers again, yet events are refused: \(answer.status) \(answer.body)") }
            usleep(200_000)
            answer = try XCTUnwrap(serve.post("/v1/events", event))
        }
        XCTAssertEqual(try readTopic("clicks-late", partitions: 4, services: services).count, 1, "the topic was created with serve.ingest.partitions and holds the event")
        XCTAssertEqual(try serve.stop(), 0)
    }
}
