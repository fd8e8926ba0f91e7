import EddyKafka
import Foundation
import XCTest

/// Repartition topics keep their records without a time limit, and stream threads ask the
/// broker to delete what their group has committed past (DeleteRecords). Tansu 0.6.0
/// refuses (it drops the connection): processing must go on exact, the refusal is said,
/// and the topic keeps every record. On a broker that deletes, the topic must start past
/// its first records in every partition instead.
final class RepartitionPurgeIntegrationTests: XCTestCase {
    func testCommittedRepartitionRecordsArePurgedWhereTheBrokerCanAndNothingStillNeededIsLost() throws {
        let services = try LocalServices()
        defer { services.stop() }
        let topic = "clicks-purge"
        let app = "purge"
        let topology = try userCountsTopology(application: app, topic: topic, in: services.workDir, file: "user-and-item-counts")
        let path = try services.writeRuntimeConfig(name: "purge-runtime", commitIntervalMs: 100)
        let config = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "runtime: {", with: "runtime: {repartition_purge_interval_ms: 100, ")
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        var files: [String] = []
        var logs = ""
        for run in 0..<2 {
            let file = services.workDir.appendingPathComponent("purge-\(run).jsonl").path
            let gen = try EddyCLI.run(["generate", "--events", "20000", "--users", "2000", "--seed", "\(60 + run)", "--topic", topic,
                                       "--partitions", "4", "--out", file, "--config", path])
            XCTAssertEqual(gen.status, 0, gen.stderr)
            files.append(file)
            let eddy = try EddyCLI.run(["run", topology, "--config", path, "--until-caught-up"])
            XCTAssertEqual(eddy.status, 0, String(eddy.stderr.suffix(3000)))
            logs += eddy.stderr
            var reference = try UserCountsReference(jsonl: files)
            reference.items = true
            XCTAssertEqual(try reference.differences(in: try services.redis()), [])
        }
        let starts = try KafkaAdmin(config: services.kafkaConfig).earliestOffsets(topic: "\(app)-per_item-repartition", partitions: 4)
        XCTAssertEqual(starts.count, 4)
        let refused = logs.contains("purging repartition topics up to their committed offsets failed")
        print("repartition purge: \(refused ? "refused by the broker" : "done"); partition starts \(starts.sorted { $0.key < $1.key }.map(\.value))")
        if refused {
            XCTAssertTrue(logs.contains("the topics keep their records meanwhile, nothing is lost"), String(logs.suffix(3000)))
            XCTAssertEqual(starts.values.filter { $0 != 0 }, [], "a broker that cannot delete keeps every record")
        } else {
            for (p, start) in starts { XCTAssertGreaterThan(start, 0, "partition \(p) purged") }
        }
    }
}
