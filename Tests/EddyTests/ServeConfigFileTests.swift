import EddyConfig
import EddyRecs
import EddyServe
import XCTest

final class ServeConfigFileTests: XCTestCase {
    func testReadsEverySetting() throws {
        setenv("EDDY_TEST_API_KEY", "k-123", 1)
        let config = try ServeConfigFile.parse("""
            kafka: {bootstrap_servers: 127.0.0.1:19092}
            serve:
              host: 127.0.0.1
              port: 0
              api_keys: [{env: EDDY_TEST_API_KEY}]
              rate_limit: {events_per_second: 500, burst: 1000}
              ingest:
                topology: Topologies/recs.yaml
                max_body_bytes: 1000
                max_batch_events: 10
                server_timestamp: false
                publish_timeout: 2s
                max_queued_events: 99
                event_type_field: kind
                partitions: 2
            """, file: "serve.yaml")
        XCTAssertEqual(config.port, 0)
        XCTAssertEqual(config.apiKeys, ["k-123"])
        XCTAssertEqual(config.rateLimit, .init(eventsPerSecond: 500, burst: 1000))
        XCTAssertEqual(config.ingest.topology, "Topologies/recs.yaml")
        XCTAssertEqual(config.ingest.maxBodyBytes, 1000)
        XCTAssertEqual(config.ingest.maxBatchEvents, 10)
        XCTAssertFalse(config.ingest.serverTimestamp)
        XCTAssertEqual(config.ingest.publishTimeoutMs, 2000)
        XCTAssertEqual(config.ingest.maxQueuedEvents, 99)
        XCTAssertEqual(config.ingest.eventTypeField, "kind")
        XCTAssertEqual(config.ingest.partitions, 2)
        // The runtime parser accepts the file with its serve: section.
        XCTAssertNoThrow(try RuntimeConfigFile.parse("serve: {port: 1}", file: "serve.yaml"))
    }

    func testReadsTheRecommendationSettings() throws {
        let config = try ServeConfigFile.parse("""
            serve:
              recommendations:
                namespace: v2
                k: 10
                max_k: 50
                budget: 40ms
                cache: {ttl: 0s, max_entries: 5}
                item_state_ttl: 250ms
                weights: {co_view: 2, popularity: 0.1, trending: 0.2, category: 0, cosine: true}
                rules: {in_stock_only: true, min_margin: 0.1, exclude_categories: [c3, c4], max_per_category: 3, unknown_items: drop}
                experiment:
                  name: exp1
                  variants:
                    - {name: control, share: 1, popularity_only: true}
                    - {name: blend, share: 3, weights: {category: 1}}
            """, file: "c.yaml")
        let r = config.recommendations
        XCTAssertEqual(r.namespace, "v2")
        XCTAssertEqual(r.defaultK, 10)
        XCTAssertEqual(r.maxK, 50)
        XCTAssertEqual(r.budgetMs, 40)
        XCTAssertEqual(r.cacheTTLSeconds, 0)
        XCTAssertEqual(r.cacheMaxEntries, 5)
        XCTAssertEqual(r.itemStateTTLMs, 250)
        var scoring = Scoring(coView: 2, popularity: 0.1, trending: 0.2, category: 0, cosine: true)
        XCTAssertEqual(r.scoring, scoring)
        XCTAssertEqual(r.rules, BusinessRules(inStockOnly: true, minMargin: 0.1, excludedCategories: ["c3", "c4"], maxPerCategory: 3, unknownItems: .drop))
        scoring.category = 1  // a variant's weights start from the section's
        XCTAssertEqual(r.experiment, .init(name: "exp1", variants: [.init(name: "control", share: 1, scoring: .popularityOnly),
                                                                    .init(name: "blend", share: 3, scoring: scoring)]))
        XCTAssertEqual(ServeConfig().recommendations.cacheTTLSeconds, 300, "five minutes unless configured")
        XCTAssertEqual(ServeConfig().recommendations.itemStateTTLMs, 1_000, "a second unless configured")
    }

    func testNoServeSectionGivesTheDefaults() throws {
        XCTAssertEqual(try ServeConfigFile.parse("kafka: {bootstrap_servers: x:1}", file: "c.yaml"), ServeConfig())
    }

    func testBadSettingsNameFileLineAndField() {
        let cases: [(String, String)] = [
            ("serve:\n  ingest:\n    max_batch: 3\n", "c.yaml:3:5: field 'serve.ingest.max_batch': unknown field 'max_batch'"),
            ("serve:\n  api_keys: [abc]\n", "c.yaml:2:14: field 'serve.api_keys[0]': a secret is given as {env: NAME} or {file: PATH}"),
            ("serve:\n  rate_limit: {burst: 5}\n", "field 'serve.rate_limit': rate_limit needs events_per_second"),
            ("serve:\n  rate_limit: {events_per_second: -1}\n", "field 'serve.rate_limit.events_per_second': expected a positive number"),
            ("serve:\n  port: 70000\n", "field 'serve.port': expected a port number"),
            ("serve:\n  rate_limit: {events_per_second: 5, burst: 0.5}\n", "field 'serve.rate_limit.burst': the burst must be at least 1 event"),
            ("serve:\n  rate_limit: {events_per_second: 1e-300}\n", "field 'serve.rate_limit.events_per_second': at least 0.001"),
            ("serve:\n  ingest: {publish_timeout: soon}\n", "field 'serve.ingest.publish_timeout': expected a positive duration"),
            ("serve:\n  recommendations: {k: 500}\n", "field 'serve.recommendations.k': k (500) must not exceed max_k (100)"),
            ("serve:\n  recommendations:\n    weights: {co_view: -1}\n", "c.yaml:3:15: field 'serve.recommendations.weights.co_view': a weight is a number of at least 0"),
            ("serve:\n  recommendations:\n    rules: {unknown_items: keep}\n", "field 'serve.recommendations.rules.unknown_items': expected one of serve, drop, got 'keep'"),
            ("serve:\n  recommendations:\n    experiment: {name: e, variants: [{name: a}, {name: a}]}\n", "duplicate variant name 'a'"),
            ("serve:\n  recommendations:\n    experiment: {name: e, variants: [{name: a, popularity_only: true, weights: {co_view: 1}}]}\n", "weights or popularity_only, not both"),
            ("serve:\n  recommendations: {budget: 2m}\n", "field 'serve.recommendations.budget': at most 60s"),
            ("serve:\n  recommendations: {max_k: 10}\n", "field 'serve.recommendations.max_k': k (20) must not exceed max_k (10)"),
            ("serve:\n  recommendations:\n    cache: {ttl: 500ms}\n", "field 'serve.recommendations.cache.ttl': a cache TTL is whole seconds"),
            ("serve:\n  recommendations:\n    item_state_ttl: 5m\n", "c.yaml:3:5: field 'serve.recommendations.item_state_ttl': at most 60s"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try ServeConfigFile.parse(text, file: "c.yaml"), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) does not contain: \(expected)")
            }
        }
    }
}
