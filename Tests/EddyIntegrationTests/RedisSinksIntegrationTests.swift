import EddyRedis
import Foundation
import XCTest

/// zset, string and per-record hash sinks (Topologies/user-activity.yaml) against real
/// services, compared with a reference computed with JSONSerialization.
final class RedisSinksIntegrationTests: XCTestCase {
    func testZsetStringAndPerRecordHashSinksMatchTheReference() throws {
        continueAfterFailure = false
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-activity"
        let config = try services.writeRuntimeConfig(name: "activity", commitIntervalMs: 300)
        let file = services.workDir.appendingPathComponent("activity.jsonl").path
        let gen = try EddyCLI.run(["generate", "--events", "60000", "--users", "800", "--seed", "5",
                                   "--topic", topic, "--partitions", "3", "--out", file, "--config", config])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let original = try String(contentsOf: LocalServices.packageRoot.appendingPathComponent("Topologies/user-activity.yaml"), encoding: .utf8)
        let topology = services.workDir.appendingPathComponent("activity-topology.yaml").path
        try original.replacingOccurrences(of: "topic: clicks", with: "topic: \(topic)").write(toFile: topology, atomically: true, encoding: .utf8)

        let result = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try runSummary(result.stdout)["records_in"] as? Int, 60_000)

        // Reference: events per user, spend per (user, category), the user's last event.
        var events: [String: Int] = [:]
        var spend: [String: [String: ExactDoubleSum]] = [:]
        var last: [String: [String: String]] = [:]
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            let e = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let user = e["user_id"] as! String
            events[user, default: 0] += 1
            if e["event_type"] as? String == "purchase" {
                spend[user, default: [:]][e["category"] as! String, default: ExactDoubleSum()].add(e["price"] as! Double)
            }
            last[user] = ["user_id": user, "item_id": e["item_id"] as! String, "event_type": e["event_type"] as! String,
                          "ts": "\((e["ts"] as! NSNumber).int64Value)"]
        }

        let redis = try services.redis()
        for user in events.keys.sorted() {
            XCTAssertEqual(try redis.send("GET", "user:\(user):events").string, "\(events[user]!)", user)
            XCTAssertEqual(UserCountsReference.hash(try redis.send("HGETALL", "user:\(user):last")), last[user]!, user)
            let zset = try redis.send("ZRANGE", "user:\(user):spend", "0", "-1", "WITHSCORES").strings
            let scores = Dictionary(uniqueKeysWithValues: stride(from: 0, to: zset.count - 1, by: 2).map { (zset[$0], Double(zset[$0 + 1])!) })
            XCTAssertEqual(scores, spend[user]?.mapValues(\.value) ?? [:], user)
        }
        XCTAssertFalse(spend.isEmpty)
    }
}
