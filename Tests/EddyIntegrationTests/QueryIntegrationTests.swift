import EddyGen
import EddyRedis
import Foundation
import XCTest

/// `eddy serve`'s query routes against a real Redis filled by real `eddy run`s of
/// `Topologies/recs.yaml` and `Topologies/catalog.yaml` over generated events: each answer
/// checked against the state in Redis and the generator's catalog (brute force in the
/// test), every bad parameter refused with its name, a cart event that invalidates that
/// user's cached answer, and a Redis that freezes, stops and comes back.
final class QueryIntegrationTests: XCTestCase {
    private static let rules = "rules: {in_stock_only: true, min_margin: 0.1, max_per_category: 2}"

    /// Redis filled by both topologies over `events`, and the generator's catalog.
    private func filledState(events: Int, seed: UInt64, topic: String, catalogTopic: String,
                             services: LocalServices) throws -> (config: String, catalog: [String: ItemCatalog.Row], recs: String, catalogFile: String) {
        let state = try services.recsState(name: "query", topic: topic, events: events, users: 400, items: 300, categories: 8, seed: seed,
                                           catalogTopic: catalogTopic, commitIntervalMs: 100)
        var options = ClickstreamGenerator.Options()
        (options.users, options.items, options.categories, options.seed) = (400, 300, 8, seed)
        let catalog = Dictionary(uniqueKeysWithValues: ItemCatalog(options).rows.map { ($0.key, $0) })
        return (state.config, catalog, state.recs, state.catalog!)
    }

    private func serveConfig(_ services: LocalServices, recs: String, ingest: Bool, extra: String) throws -> String {
        try services.writeServeConfig(name: "serve", topology: recs, serve: "recommendations:\n  \(Self.rules)\n" + extra,
                                      ingest: ingest ? "" : "enabled: false")
    }

    /// What the rules admit, by the generator's catalog: in stock, margin ≥ 0.10.
    private func admitted(_ item: String, _ catalog: [String: ItemCatalog.Row]) -> Bool {
        guard let row = catalog[item] else { return true }
        return row.inStock && row.marginPercent >= 10
    }

    /// Brute force: the members of a zset best first (ZREVRANGE order), those the rules
    /// admit, at most two per category, without `seen`, the first k.
    private func expectedTop(_ zset: [(String, Double)], k: Int, seen: Set<String> = [], catalog: [String: ItemCatalog.Row]) -> [String] {
        var out: [String] = [], perCategory: [Int: Int] = [:]
        for (item, _) in zset where !seen.contains(item) && admitted(item, catalog) {
            if let c = catalog[item]?.category {
                if perCategory[c, default: 0] == 2 { continue }
                perCategory[c, default: 0] += 1
            }
            out.append(item)
            if out.count == k { break }
        }
        return out
    }

    private func zset(_ redis: RedisConnection, _ key: String) throws -> [(String, Double)] {
        let flat = try redis.send("ZREVRANGE", key, "0", "-1", "WITHSCORES").strings
        // ZREVRANGE breaks ties by member, descending; the recommender by item id, ascending.
        return stride(from: 0, to: flat.count, by: 2).map { (flat[$0], Double(flat[$0 + 1])!) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }

    private func items(_ answer: ServeProcess.Answer?) -> [String] {
        ((answer?.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["item"] as? String }
    }

    /// FNV-1a 64 of experiment, 0, user, then fmix64; the top 53 bits as a fraction (the
    /// documented split).
    private func variant(of user: String, shares: [(String, Double)]) -> String {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in Array("exp".utf8) + [0] + Array(user.utf8) { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        h = (h ^ (h >> 33)) &* 0xff51afd7ed558ccd
        h = (h ^ (h >> 33)) &* 0xc4ceb9fe1a85ec53
        h ^= h >> 33
        let x = Double(h >> 11) / 9_007_199_254_740_992
        let total = shares.reduce(0) { $0 + $1.1 }
        var sum = 0.0
        for (name, share) in shares {
            sum += share / total
            if x < sum { return name }
        }
        return shares.last!.0
    }

    func testAnswersComeFromTheStateFollowTheRulesAndBadParametersAreNamed() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let (config, catalog, recs, catalogFile) = try filledState(events: 20_000, seed: 9, topic: "clicks-query", catalogTopic: "catalog-query", services: services)
        let serve = try ServeProcess(config: try serveConfig(services, recs: recs, ingest: false, extra: """
              experiment:
                name: exp
                variants:
                  - {name: control, share: 1, popularity_only: true}
                  - {name: blend, share: 1}
            """))
        defer { _ = try? serve.stop() }
        // Ready once the blend's model has been read: answers before that leave it out.
        let readyBy = Date().addingTimeInterval(30)
        while serve.request("GET", "/readyz")?.status != 200, Date() < readyBy { usleep(100_000) }
        XCTAssertEqual(serve.request("GET", "/readyz")?.json["status"] as? String, "ready")
        let redis = try services.redis()
        XCTAssertEqual(try redis.send("HGET", "catalog:i7", "category").string, "c\(catalog["i7"]!.category)", "catalog.yaml filled the catalog")
        let popularity = try zset(redis, "item:popularity")

        // Users with history: seen items left out, the rules and the cap hold, the variant
        // is the documented hash's; the control variant is popularity alone, by brute force.
        let users = try redis.send("KEYS", "user:recent:*").strings.map { String($0.dropFirst("user:recent:".count)) }.sorted().prefix(40)
        XCTAssertEqual(users.count, 40)
        var variants: [String: Int] = [:]
        for user in users {
            let answer = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=\(user)&k=10"))
            XCTAssertEqual(answer.status, 200, answer.body)
            XCTAssertEqual(answer.json["fallback"] as? Bool, false, answer.body)
            let seen = Set(try redis.send("LRANGE", "user:recent:\(user)", "0", "-1").strings)
            let got = items(answer)
            let variant = variant(of: user, shares: [("control", 1), ("blend", 1)])
            XCTAssertEqual(answer.json["variant"] as? String, variant, user)
            XCTAssertEqual(answer.json["experiment"] as? String, "exp")
            variants[variant, default: 0] += 1
            XCTAssertTrue(seen.isDisjoint(with: got), "\(user): a seen item was recommended: \(answer.body)")
            XCTAssertTrue(got.allSatisfy { admitted($0, catalog) }, "\(user): an item the rules refuse: \(answer.body)")
            let perCategory = Dictionary(grouping: got.compactMap { catalog[$0]?.category }, by: { $0 }).mapValues(\.count)
            XCTAssertLessThanOrEqual(perCategory.values.max() ?? 0, 2, "\(user): the category cap: \(answer.body)")
            let scores = ((answer.json["items"] as? [[String: Any]]) ?? []).compactMap { ($0["score"] as? NSNumber)?.doubleValue }
            XCTAssertEqual(scores, scores.sorted(by: >), user)
            if variant == "control" {
                XCTAssertEqual(got, expectedTop(popularity, k: 10, seen: seen, catalog: catalog), "\(user): popularity only")
            } else {
                XCTAssertEqual(got.count, 10, answer.body)
                for item in (answer.json["items"] as? [[String: Any]]) ?? [] {
                    guard let reason = item["reason"] as? String, reason.hasPrefix("co-viewed with ") else { continue }
                    let seed = String(reason.dropFirst("co-viewed with ".count))
                    XCTAssertTrue(seen.contains(seed), "\(user): the reason names an item the user saw: \(reason)")
                    XCTAssertNotNil(try redis.send("ZSCORE", "co_view:\(seed)", item["item"] as! String).string, "\(user): \(reason)")
                }
            }
        }
        XCTAssertEqual(variants.count, 2, "both variants served: \(variants)")
        // The blend weighs the online model (recs.yaml's model node): within a snapshot
        // refresh (10 s) some answer gives the reason (a new exclude list misses the cache).
        let blendUser = try XCTUnwrap(users.first { variant(of: $0, shares: [("control", 1), ("blend", 1)]) == "blend" })
        var modelReasons = 0
        for attempt in 0..<25 where modelReasons == 0 {
            if attempt > 0 { usleep(1_000_000) }
            let answer = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=\(blendUser)&k=20&exclude=poll\(attempt)"))
            modelReasons = ((answer.json["items"] as? [[String: Any]]) ?? []).filter { $0["reason"] as? String == "similar to your taste" }.count
        }
        XCTAssertGreaterThan(modelReasons, 0, "no answer of \(blendUser) is the model's")
        XCTAssertEqual(serve.metric("eddy_serve_experiment_requests_total", [#"variant="control""#]), Double(variants["control"]!))

        // A cold user: popular items; with a known session, popular in its top category.
        let cold = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=nobody&k=8"))
        XCTAssertEqual(items(cold), expectedTop(popularity, k: 8, catalog: catalog), cold.body)
        let sessionKey = try XCTUnwrap(try redis.send("KEYS", "session:*:features").strings.sorted().first)
        let session = String(sessionKey.dropFirst("session:".count).dropLast(":features".count))
        let top = try XCTUnwrap(try redis.send("HGET", sessionKey, "top_category").string)
        let inSession = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=nobody&k=5&session_id=\(session)"))
        XCTAssertEqual(items(inSession), expectedTop(try zset(redis, "item:popularity:\(top)"), k: 5, catalog: catalog), inSession.body)
        // The session's features, as Redis holds them.
        let features = try XCTUnwrap(serve.request("GET", "/v1/sessions/\(session)/features"))
        let stored = try redis.send("HGETALL", sessionKey).strings
        XCTAssertEqual((features.json["features"] as? [String: Any])?.count, stored.count / 2, features.body)
        XCTAssertEqual((features.json["features"] as? [String: Any])?["top_category"] as? String, top)

        // Cross-sell for a cold user of the blend: the context item's co-view, 2^(s − max),
        // plus 0.001 × popularity 2^(p − p_max) (the default weights), the item left out.
        let guest = try XCTUnwrap((0..<100).map { "guest\($0)" }.first { variant(of: $0, shares: [("control", 1), ("blend", 1)]) == "blend" })
        let context = popularity[0].0
        let neighbours = try zset(redis, "co_view:\(context)")
        let best = neighbours.map(\.1).max()!, topPopularity = popularity[0].1
        let popularScore = Dictionary(uniqueKeysWithValues: popularity.map { ($0.0, $0.1) })
        var blended: [String: Double] = [:]
        for (item, s) in neighbours.prefix(50) { blended[item] = exp2(s - best) }
        for (item, _) in popularity.prefix(100) { blended[item, default: 0] += 0 }
        for item in blended.keys { blended[item]! += 0.001 * exp2(popularScore[item].map { $0 - topPopularity } ?? -.infinity) }
        let blendRanking = blended.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        let crossSell = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=\(guest)&k=5&item_id=\(context)"))
        XCTAssertEqual(items(crossSell), expectedTop(blendRanking, k: 5, seen: [context], catalog: catalog), crossSell.body)
        // Excluded items are left out.
        let first = items(try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=nobody&k=3")))
        let without = items(try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=nobody&k=3&exclude=\(first[0]),\(first[1])")))
        XCTAssertEqual(without, expectedTop(popularity, k: 3, seen: Set(first.prefix(2)), catalog: catalog))

        // Similar items, popular and trending, against the zsets.
        let similar = try XCTUnwrap(serve.request("GET", "/v1/items/\(context)/similar?k=6"))
        XCTAssertEqual(items(similar), expectedTop(try zset(redis, "co_view:\(context)"), k: 6, seen: [context], catalog: catalog), similar.body)
        XCTAssertEqual(items(serve.request("GET", "/v1/items/unknown-item/similar")), [], "an unknown item has no neighbours")
        XCTAssertEqual(items(serve.request("GET", "/v1/popular?k=7")), expectedTop(popularity, k: 7, catalog: catalog))
        XCTAssertEqual(items(serve.request("GET", "/v1/popular?k=7&window=trending")), expectedTop(try zset(redis, "item:trending"), k: 7, catalog: catalog))
        XCTAssertEqual(items(serve.request("GET", "/v1/popular?k=4&category=c3")), expectedTop(try zset(redis, "item:popularity:c3"), k: 4, catalog: catalog))
        let trendingInC3 = try zset(redis, "item:trending").filter { catalog[$0.0]?.category == 3 }
        XCTAssertEqual(items(serve.request("GET", "/v1/popular?k=4&category=c3&window=trending")), expectedTop(trendingInC3, k: 4, catalog: catalog))

        // Bad parameters: 400 naming the parameter; never a 5xx.
        let long = String(repeating: "x", count: 600)
        let bad: [(String, String)] = [
            ("/v1/recommendations", "user_id"), ("/v1/recommendations?user_id=", "user_id"), ("/v1/recommendations?user_id=\(long)", "user_id"),
            ("/v1/recommendations?user_id=u1&k=0", "k"), ("/v1/recommendations?user_id=u1&k=101", "k"), ("/v1/recommendations?user_id=u1&k=ten", "k"),
            ("/v1/recommendations?user_id=u1&exclude=" + (0..<1000).map { "i\($0)" }.joined(separator: ","), "exclude"),
            ("/v1/popular?window=weekly", "window"),
            ("/v1/items/i1/similar?cosine=maybe", "cosine"), ("/v1/items/i1/similar?k=-3", "k"),
        ]
        for (path, parameter) in bad {
            let answer = try XCTUnwrap(serve.request("GET", path), path)
            XCTAssertEqual(answer.status, 400, "\(path): \(answer.body)")
            XCTAssertEqual(answer.json["parameter"] as? String, parameter, path)
        }
        XCTAssertEqual(serve.request("GET", "/v1/recommendation?user_id=u1")?.status, 404)
        let post = try XCTUnwrap(serve.request("POST", "/v1/recommendations?user_id=u1"))
        XCTAssertEqual(post.status, 405, post.body)
        XCTAssertEqual(post.headers["allow"], "GET")
        XCTAssertEqual(serve.request("DELETE", "/healthz")?.headers["allow"], "GET")
        XCTAssertEqual(serve.metric("eddy_http_requests_total", [#"status="5"#]), 0, "no 5xx")

        // A replay into namespace v2 (its own application id; other events, so its state
        // differs), promoted: serve follows without a restart, and back again.
        let refused = try EddyCLI.run(["promote", "v2", "--config", config])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("namespace v2 holds no keys"), refused.stderr)
        let gen = try EddyCLI.run(["generate", "--events", "3000", "--users", "100", "--items", "300", "--categories", "8", "--seed", "99",
                                   "--topic", "clicks-v2", "--partitions", "4", "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        for (file, topic) in [(recs, "clicks-v2"), (catalogFile, "catalog-query")] {
            let v2 = file + ".v2.yaml"
            try String(contentsOfFile: file, encoding: .utf8)
                .replacingOccurrences(of: "application: recs\n", with: "application: recs-v2\nnamespace: v2\n")
                .replacingOccurrences(of: "application: catalog\n", with: "application: catalog-v2\nnamespace: v2\n")
                .replacingOccurrences(of: "topic: clicks-query\n", with: "topic: \(topic)\n")
                .write(toFile: v2, atomically: true, encoding: .utf8)
            let run = try EddyCLI.run(["run", v2, "--config", config, "--until-caught-up"])
            XCTAssertEqual(run.status, 0, String(run.stderr.suffix(3000)))
        }
        let v2Popularity = try zset(redis, "v2:item:popularity")
        XCTAssertNotEqual(v2Popularity.map(\.0).prefix(7), popularity.map(\.0).prefix(7), "the replay's state differs")
        XCTAssertEqual(items(serve.request("GET", "/v1/popular?k=7")), expectedTop(popularity, k: 7, catalog: catalog), "not promoted yet")
        let promote = try EddyCLI.run(["promote", "v2", "--config", config])
        XCTAssertEqual(promote.status, 0, promote.stderr)
        XCTAssertTrue(promote.stdout.contains("now answers from namespace v2 (was (none))"), promote.stdout)
        func waitForPopular(_ expected: [String]) {
            let deadline = Date().addingTimeInterval(10)
            while items(serve.request("GET", "/v1/popular?k=7")) != expected, Date() < deadline { usleep(100_000) }
            XCTAssertEqual(items(serve.request("GET", "/v1/popular?k=7")), expected)
        }
        waitForPopular(expectedTop(v2Popularity, k: 7, catalog: catalog))
        XCTAssertEqual(serve.request("GET", "/readyz")?.json["namespace"] as? String, "v2")
        let v2User = try XCTUnwrap(try redis.send("KEYS", "v2:user:recent:*").strings.first).dropFirst("v2:user:recent:".count)
        let v2Answer = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=\(v2User)&k=10"))
        XCTAssertTrue(Set(try redis.send("LRANGE", "v2:user:recent:\(v2User)", "0", "-1").strings).isDisjoint(with: items(v2Answer)), v2Answer.body)
        XCTAssertEqual(v2Answer.json["cached"] as? Bool, false)
        XCTAssertEqual(try EddyCLI.run(["promote", "--none", "--config", config]).status, 0)
        waitForPopular(expectedTop(popularity, k: 7, catalog: catalog))
        XCTAssertTrue(serve.running.stderr.contains("answering from namespace v2"), "the log says so")
    }

    func testACartEventInvalidatesTheCachedAnswerAndRedisFailuresFallBackToPopularItems() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let (config, catalog, recs, _) = try filledState(events: 8_000, seed: 11, topic: "clicks-cache", catalogTopic: "catalog-cache", services: services)
        let run = try EddyCLI.start(["run", recs, "--config", config])
        defer { run.signal(SIGTERM); _ = try? run.wait(timeout: 30) }
        let serve = try ServeProcess(config: try serveConfig(services, recs: recs, ingest: true, extra: "  budget: 80ms"))
        defer { _ = try? serve.stop() }
        let redis = try services.redis()
        let users = try redis.send("KEYS", "user:recent:*").strings.map { String($0.dropFirst("user:recent:".count)) }.sorted()
        let (user, other) = (users[0], users[1])
        func ask(_ user: String) throws -> ServeProcess.Answer {
            let answer = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=\(user)&k=10"))
            XCTAssertEqual(answer.status, 200, answer.body)
            return answer
        }
        XCTAssertEqual(try ask(user).json["cached"] as? Bool, false)
        XCTAssertEqual(try ask(user).json["cached"] as? Bool, true, "the same question again: from the cache")
        XCTAssertEqual(try ask(other).json["cached"] as? Bool, false)
        // A view (no cart version change) of an item the cached answer holds: the next
        // cached answer leaves it out, as the user has seen it now.
        let cachedItems = items(try ask(other))
        let viewed = try XCTUnwrap(cachedItems.first)
        let view = #"{"user_id":"\#(other)","event_type":"view","item_id":"\#(viewed)","category":"c\#(catalog[viewed]!.category)","ts":1767300000000}"#
        XCTAssertEqual(serve.post("/v1/events", view)?.status, 202)
        let seenBy = Date().addingTimeInterval(60)
        while try !redis.send("LRANGE", "user:recent:\(other)", "0", "0").strings.contains(viewed) {
            XCTAssertLessThan(Date(), seenBy, "eddy run did not record the view within 60 s")
            usleep(100_000)
        }
        let afterView = try ask(other)
        XCTAssertEqual(afterView.json["cached"] as? Bool, true)
        XCTAssertEqual(items(afterView), Array(cachedItems.dropFirst()), "a seen item is never recommended, cached or not")

        // A cart event for `user`, posted to ingest: once eddy run has committed it, the
        // user's next answer is computed again; the other user's stays cached.
        let version = try redis.send("GET", "user:cart:\(user)").string.flatMap { Int($0) } ?? 0
        let cart = #"{"user_id":"\#(user)","event_type":"cart","item_id":"i1","category":"c\#(catalog["i1"]!.category)","ts":1767300000000}"#
        XCTAssertEqual(serve.post("/v1/events", cart)?.status, 202)
        let deadline = Date().addingTimeInterval(60)
        while try redis.send("GET", "user:cart:\(user)").string.flatMap({ Int($0) }) ?? 0 <= version {
            XCTAssertLessThan(Date(), deadline, "eddy run did not count the cart event within 60 s")
            usleep(100_000)
        }
        XCTAssertEqual(try ask(user).json["cached"] as? Bool, false, "a cart event invalidates the user's cached answer")
        XCTAssertEqual(try ask(user).json["cached"] as? Bool, true)
        XCTAssertEqual(try ask(other).json["cached"] as? Bool, true, "and no one else's")
        XCTAssertEqual(serve.metric("eddy_serve_cache_requests_total", [#"result="hit""#]), 5)

        // Redis frozen: answers within the budget (plus slack), popular items from the
        // snapshot that pass the rules, "fallback": true. (The cart event's popularity
        // reaches Redis through the repartition topic: it settles, then the snapshot,
        // read every 2 s, catches up.)
        sleep(3)
        let popular = expectedTop(try zset(redis, "item:popularity"), k: 5, catalog: catalog)
        XCTAssertEqual(popular.count, 5)
        sleep(3)
        services.freezeRedis()
        var reasons: Set<String> = []
        for i in 0..<12 {
            let started = Date()
            let answer = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=\(users[2 + i])&k=5", timeout: 10))
            XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "answered within the budget, not after Redis' time-out")
            XCTAssertEqual(answer.status, 200, answer.body)
            XCTAssertEqual(answer.json["fallback"] as? Bool, true, answer.body)
            XCTAssertEqual(items(answer), popular, "the snapshot's popular items, through the rules")
            reasons.insert(answer.json["fallback_reason"] as? String ?? "?")
        }
        XCTAssertTrue(reasons.contains("budget"), "\(reasons)")
        XCTAssertEqual(serve.request("GET", "/v1/items/i1/similar", timeout: 10)?.status, 503, "similar items have no fallback")
        XCTAssertEqual(serve.request("GET", "/readyz", timeout: 10)?.status, 503)
        services.thawRedis()

        // Redis stopped: the breaker opens and fallbacks go on; restarted: answers again.
        services.stopRedis()
        var opened = false
        for i in 0..<40 where !opened {
            let answer = try XCTUnwrap(serve.request("GET", "/v1/recommendations?user_id=\(users[i])&k=5", timeout: 10))
            XCTAssertEqual(answer.status, 200)
            XCTAssertEqual(answer.json["fallback"] as? Bool, true, answer.body)
            opened = answer.json["fallback_reason"] as? String == "circuit_open"
            usleep(50_000)
        }
        XCTAssertTrue(opened, "the circuit breaker opened")
        XCTAssertGreaterThanOrEqual(serve.metric("eddy_serve_circuit_openings_total"), 1)
        XCTAssertEqual(serve.metric("eddy_serve_circuit_open"), 1)
        try services.restartRedis(withData: true)
        let recovered = Date().addingTimeInterval(20)
        var answer = try ask(other)
        while answer.json["fallback"] as? Bool != false, Date() < recovered {
            usleep(200_000)
            answer = try ask(other)
        }
        XCTAssertEqual(answer.json["fallback"] as? Bool, false, "answers from Redis again once it is back: \(answer.body)")
        XCTAssertEqual(serve.metric("eddy_serve_circuit_open"), 0)
        XCTAssertEqual(serve.request("GET", "/readyz")?.status, 200)
        XCTAssertGreaterThan(serve.metric("eddy_serve_fallbacks_total", [#"reason="budget""#]), 0)
        XCTAssertEqual(serve.metric("eddy_http_requests_total", [#"route="/v1/recommendations""#, #"status="5"#]), 0, "never a 5xx")
        XCTAssertTrue(serve.running.stderr.contains("the circuit breaker opened"), "the log says so")
        XCTAssertEqual(try serve.stop(), 0)
    }
}
