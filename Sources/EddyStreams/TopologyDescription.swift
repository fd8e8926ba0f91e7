extension Topology {
    /// Throws the first problem that would stop this topology from running.
    public func validate() throws {
        _ = try TopologyCompiler.compile(self)
    }

    public enum DescriptionFormat: String, CaseIterable, Sendable { case text, mermaid, dot }

    /// A human-readable description of the graph, or Mermaid / Graphviz DOT source.
    public func describe(_ format: DescriptionFormat = .text) -> String {
        // A topology that does not compile is described node by node (`validate` says why).
        let compiled = try? TopologyCompiler.compile(self)
        switch format {
        case .text: return textDescription(compiled)
        case .mermaid, .dot: return graph(format, compiled)
        }
    }

    private func textDescription(_ compiled: CompiledTopology?) -> String {
        var lines = ["Topology \(application)" + (namespace.map { " (Redis keys in namespace \($0))" } ?? ""),
                     "  source: topic \(source.topic), key \(source.keyField), event time \(source.timestampField)"
                        + (source.requiredFields.isEmpty ? "" : ", requires \(source.requiredFields.joined(separator: ", "))"),
                     "  dead letters: \(deadLetterTopic) (records over \(source.maxValueBytes) bytes, invalid JSON/UTF-8, missing or mistyped fields, event times outside 1970-9999)",
                     "  re-keying: records whose Kafka key is not their \(source.keyField) (or none) go through \(Repartitions.topic(application: application, node: TopologyCompiler.reservedNodeName)) to the task of their \(source.keyField)"]
        for table in tables {
            lines.append("  table \(table.name): topic \(table.topic), keyed by record key, loaded whole by every stream thread and kept current")
        }
        for (index, members) in subtopologyMembers(compiled) {
            if let index, let compiled { lines.append("  " + subtopologyTitle(compiled.subtopologies[index], compiled)) }
            let indent = index == nil ? "  " : "    "
            for node in members {
                lines.append("\(indent)\(node.name) <- \(node.input ?? "source"): \(describe(node, compiled))")
                for sink in node.sinks { lines.append("\(indent)  -> redis \(Self.describe(sink))") }
                for sink in node.topicSinks { lines.append("\(indent)  -> topic \(Self.describe(sink))") }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The nodes by sub-topology (in order), or all under nil when the topology does not compile.
    private func subtopologyMembers(_ compiled: CompiledTopology?) -> [(index: Int?, nodes: [Node])] {
        guard let compiled else { return [(nil, nodes)] }
        return compiled.subtopologies.map { s in (s.index, nodes.indices.filter { compiled.nodes[$0].subtopology == s.index }.map { nodes[$0] }) }
    }

    /// "sub-topology 1: a task per partition of <topic> (keyed by device_id), …".
    private func subtopologyTitle(_ s: CompiledTopology.Subtopology, _ compiled: CompiledTopology) -> String {
        var title = s.key.isEmpty
            ? "sub-topology \(s.index): one task, on the one partition of \(s.topic) its records all go to"
            : "sub-topology \(s.index): a task per partition of \(s.topic) (keyed by \(s.key.joined(separator: ", ")))"
        if let node = s.rekeyNode, let edge = compiled.nodes[node].repartition {
            title += edge.kind == .records ? ", records re-keyed by sub-topology \(edge.upstream)" : ", partials combined by sub-topology \(edge.upstream)"
        }
        return title
    }

    /// Mermaid and DOT: the nodes of each sub-topology in a group (a subgraph, a cluster),
    /// an edge through a repartition topic labelled with it.
    private func graph(_ format: DescriptionFormat, _ compiled: CompiledTopology?) -> String {
        let mermaid = format == .mermaid
        func node(_ id: String, _ label: String) -> String {
            mermaid ? "  \(id)[\"\(label)\"]" : "  \"\(id)\" [shape=box, label=\"\(label.replacingOccurrences(of: "\"", with: "'"))\"];"
        }
        func edge(_ from: String, _ to: String, _ label: String? = nil) -> String {
            if mermaid { return "  \(from) -->" + (label.map { "|\($0)|" } ?? "") + " \(to)" }
            return "  \"\(from)\" -> \"\(to)\"" + (label.map { " [label=\"\($0)\"]" } ?? "") + ";"
        }
        var lines = [mermaid ? "flowchart LR" : "digraph \"\(application)\" {\n  rankdir=LR;", node("source", "source: \(source.topic)\\nkey \(source.keyField)")]
        for table in tables { lines.append(node("table_\(table.name)", "table \(table.name)\\ntopic \(table.topic)")) }
        var edges: [String] = []
        for (index, members) in subtopologyMembers(compiled) {
            if let index, let compiled {
                let title = subtopologyTitle(compiled.subtopologies[index], compiled).replacingOccurrences(of: "\"", with: "'")
                lines.append(mermaid ? "  subgraph sub\(index)[\"\(title)\"]" : "  subgraph cluster_\(index) {\n    label=\"\(title)\";")
            }
            for n in members {
                lines.append(node(n.name, "\(n.name)\\n\(describe(n, compiled))"))
                let i = nodes.firstIndex { $0.name == n.name }!
                edges.append(edge(n.input ?? "source", n.name, compiled?.nodes[i].repartition?.topic))
                if case .join(let join) = n.operation { edges.append(edge("table_\(join.table)", n.name)) }
                for (i, sink) in n.sinks.enumerated() {
                    let id = "\(n.name)_redis\(i)"
                    lines.append(node(id, "redis \(sink.kind.rawValue)\\n\(sink.key)"))
                    edges.append(edge(n.name, id))
                }
                for (i, sink) in n.topicSinks.enumerated() {
                    let id = "\(n.name)_topic\(i)"
                    lines.append(node(id, "topic \(sink.topic)"))
                    edges.append(edge(n.name, id))
                }
            }
            if index != nil { lines.append(mermaid ? "  end" : "  }") }
        }
        lines += edges
        if !mermaid { lines.append("}") }
        return lines.joined(separator: "\n")
    }

    /// The node's operation; a re-keyed node names its repartition topic.
    private func describe(_ node: Node, _ compiled: CompiledTopology?) -> String {
        var text = Self.describe(node.operation)
        if let ttl = node.stateTTLMs {
            if case .model = node.operation { text += ", users idle \(Self.describe(ms: ttl)) of event time leave" } else { text += ", groups idle \(Self.describe(ms: ttl)) of event time leave" }
        }
        if let input = node.input, case .aggregate? = nodes.first(where: { $0.name == input })?.operation {
            text += " of \(input)'s rows (each change takes the old row back)"
        }
        if let compiled, let i = nodes.firstIndex(where: { $0.name == node.name }),
           let edge = compiled.nodes[i].repartition {
            return text + ", re-keyed through \(edge.topic) (\(edge.kind == .records ? "its records" : "partials combined upstream"))"
        }
        return text
    }

    static func describe(_ operation: Operation) -> String {
        switch operation {
        case .filter(let field, let condition):
            switch condition {
            case .equals(let v): return "filter \(field) == \(v)"
            case .oneOf(let vs): return "filter \(field) in [\(vs.joined(separator: ", "))]"
            case .noneOf(let vs): return "filter \(field) not in [\(vs.joined(separator: ", "))]"
            case .exists: return "filter \(field) exists"
            }
        case .project(let fields): return "project [\(fields.joined(separator: ", "))]"
        case .aggregate(let groupBy, let sum, let weights):
            return "aggregate by [\(groupBy.joined(separator: ", "))]: count" + sum.map { ", sum_\($0)" }.joined()
                + (weights.map { ", weighted_count (by \($0.field))" } ?? "") + " (RocksDB store)"
        case .recent(let groupBy, let field, let size, let distinct):
            return "recent by [\(groupBy.joined(separator: ", "))]: count, recent (last \(size)\(distinct ? " distinct" : "") \(field) by event time) (RocksDB store)"
        case .decay(let groupBy, let weights, let halfLifeMs, let trendHalfLifeMs, let topK):
            return "decay by [\(groupBy.joined(separator: ", "))]: count, score, last_time, rank"
                + (trendHalfLifeMs.map { ", long_score, long_rank, trend (against a half-life of \($0 / 1000) s)" } ?? "")
                + " (weights by \(weights.field), half-life \(halfLifeMs / 1000) s, on event time)"
                + (topK.map { ", top \($0.k) \(groupBy.last!) per [\(groupBy.dropLast().joined(separator: ", "))], pruned every \(describe(ms: $0.everyMs)) of event time + grace \(describe(ms: $0.graceMs))" } ?? "")
                + " (RocksDB store)"
        case .session(let w):
            return "session(group_by: \(w.groupBy.joined(separator: ", ")), gap \(describe(ms: w.gapMs)), grace \(describe(ms: w.graceMs)))"
                + (w.closedTTLSeconds.map { ttl in
                    let (ms, overflow) = Int64(ttl).multipliedReportingOverflow(by: 1000)
                    return ", closed sessions kept \(overflow ? "\(ttl)s" : describe(ms: ms))"
                } ?? ", closed sessions deleted")
        case .join(let j):
            return "join table \(j.table) on \(j.on): adds [\(j.fields.joined(separator: ", "))], missing row: \(j.missing.rawValue)"
        case .pairs(let p):
            return "pairs by [\(p.groupBy.joined(separator: ", "))]: \(p.itemField) with each of the last \(p.last) distinct \(p.itemField)"
                + (p.withinMs.map { " seen within \(describe(ms: $0))" } ?? "") + ", both ways, as \(p.otherField) (RocksDB store)"
        case .model(let m):
            return "model: \(m.factors) factors per \(m.userField) and \(m.itemField), incremental implicit ALS (weights by \(m.weights.field), "
                + "alpha \(m.alpha), missing data weight \(m.missingWeight), regularization \(m.regularization)), in event-time order after a grace of \(describe(ms: m.graceMs)), "
                + "in one task (RocksDB store)"
        case .passthrough: return "pass"
        }
    }

    /// A duration in its largest whole unit: 30m, 5m, 90s, 500ms, 0s.
    static func describe(ms: Int64) -> String {
        if ms == 0 { return "0s" }
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms % size == 0 {
            return "\(ms / size)\(unit)"
        }
        return "\(ms)ms"
    }

    static func describe(_ sink: TopicSink) -> String {
        "\(sink.topic)" + (sink.key.map { ", key \($0)" } ?? "") + (sink.fields.map { ", fields [\($0.joined(separator: ", "))]" } ?? ", every field")
            + " (JSON, in the commit's transaction, header eddy.id)"
    }

    static func describe(_ sink: RedisSink) -> String {
        var parts = ["\(sink.kind.rawValue) \(sink.key)"]
        if let field = sink.field { parts.append(sink.kind == .zset ? "member \(field)" : "field \(field)") }
        if let value = sink.value { parts.append(sink.kind == .zset ? "score \(value)" : "value \(value)") }
        if let ttl = sink.ttlSeconds { parts.append("ttl \(ttl)s") }
        return parts.joined(separator: ", ")
    }
}
