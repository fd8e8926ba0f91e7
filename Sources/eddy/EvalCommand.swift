import ArgumentParser
import EddyConfig
import EddyRecs
import EddyStreams
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prequential evaluation of the recommendation state over an event log: HR@10/20 and NDCG@10/20 per method, warm and cold users.",
        discussion: """
            Runs the topology (Topologies/recs.yaml, plus a plain count per item for the popularity baseline) in the \
            topology test driver: the first --warm-up share of the events by event time warms the state; for each later \
            interaction with an item new to the user, every method recommends the user's top 20 before the event is applied.
            """)

    @Option(help: "The event log: JSON lines with user_id, item_id, event_type and ts (eddy generate --out).") var events: String
    @Option(help: "The topology whose state is scored.") var topology: String = "Topologies/recs.yaml"
    @Option(help: "The share of events (by event time) that only warms the state.") var warmUp: Double = 0.9
    @Option(help: "Source partitions in the driver (each has its own stream time).") var partitions: Int = 4
    @Flag(help: "Print the table as JSON.") var json = false
    @OptionGroup(title: "The blend") var blend: ScoringOptions

    func validate() throws {
        if !(warmUp > 0 && warmUp < 1) { throw ValidationError("--warm-up must be between 0 and 1, got \(warmUp)") }
        if partitions < 1 { throw ValidationError("--partitions must be at least 1") }
    }

    func run() throws {
        var topology = try TopologyFile.load(path: self.topology)
        let interactions = topology.nodes.first { $0.name == "interactions" }
        var types: Set<String> = ["view", "click", "cart", "purchase"]
        if case .filter(_, .oneOf(let values))? = interactions?.operation { types = Set(values) }
        // The popularity baseline, beside the topology's own state: interactions counted per
        // item, as a rank (a decay whose half-life, 100 years, leaves counts as they are:
        // scoring reads every popularity zset as log2 values).
        topology.nodes.append(Topology.Node(name: "eval_item_counts", input: interactions?.name,
                                            operation: .decay(groupBy: ["item_id"], weights: Topology.Weights(field: "event_type", values: types.sorted().map { .init($0, 1) }),
                                                              halfLifeMs: 36_525 * 86_400_000),
                                            sinks: [Topology.RedisSink(kind: .zset, key: "item:count", field: "{item_id}", value: "rank")]))
        let log = try Self.read(events)
        let started = Date()
        let evaluation = PrequentialEvaluation(driver: try TopologyTestDriver(topology, partitions: partitions), interactions: types, k: 20,
                                               methods: PrequentialEvaluation.methods(blend: blend.scoring))
        let result = try evaluation.run(log, warmUp: warmUp)
        let seconds = Date().timeIntervalSince(started)
        if json {
            var rows: [[String: Any]] = []
            for (m, method) in evaluation.methods.enumerated() {
                for (users, q) in [("warm", result.warm[m]), ("cold", result.cold[m])] {
                    rows.append(["method": method.name, "users": users, "trials": q.trials, "hr10": q.hitRate(at: 10), "hr20": q.hitRate(at: 20),
                                 "ndcg10": q.ndcg(at: 10), "ndcg20": q.ndcg(at: 20)])
                }
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("prequential evaluation of \(self.topology) over \(events): \(result.warmUpEvents) warm-up events, \(result.heldOutEvents) held out, in \(String(format: "%.1f", seconds)) s")
        print("| method | users | trials | HR@10 | HR@20 | NDCG@10 | NDCG@20 |")
        print("|---|---|---|---|---|---|---|")
        for (users, qualities) in [("warm", result.warm), ("cold", result.cold)] {
            for (m, method) in evaluation.methods.enumerated() {
                let q = qualities[m]
                print("| \(method.name) | \(users) | \(q.trials) | " + [q.hitRate(at: 10), q.hitRate(at: 20), q.ndcg(at: 10), q.ndcg(at: 20)].map { String(format: "%.4f", $0) }.joined(separator: " | ") + " |")
            }
        }
    }

    /// The log's events in event-time order (ties in file order).
    static func read(_ path: String) throws -> [PrequentialEvaluation.Event] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
        var events: [PrequentialEvaluation.Event] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let user = object["user_id"] as? String, let item = object["item_id"] as? String,
                  let type = object["event_type"] as? String, let ts = (object["ts"] as? NSNumber)?.int64Value else {
                throw ValidationError("\(path):\(n + 1): not an event with user_id, item_id, event_type and ts (strings, ts a number)")
            }
            events.append(.init(json: String(line), user: user, item: item, type: type, ts: ts))
        }
        return events.enumerated().sorted { ($0.element.ts, $0.offset) < ($1.element.ts, $1.offset) }.map(\.element)
    }
}
