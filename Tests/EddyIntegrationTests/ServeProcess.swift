import Foundation
import XCTest

/// A running `eddy serve` (the real binary) on a free port, stopped with SIGTERM.
final class ServeProcess {
    let running: EddyCLI.Running
    let port: Int

    /// Starts `eddy serve --config config` and waits for its "listening on" line.
    init(config: String, environment: [String: String] = [:]) throws {
        running = try EddyCLI.start(["serve", "--config", config, "--port", "0"], environment: environment)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let out = (try? String(contentsOf: running.stdoutURL, encoding: .utf8)) ?? ""
            if let line = out.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
               let port = line.split(separator: ":").last.flatMap({ Int($0) }) {
                self.port = port
                return
            }
            guard running.isRunning else { throw ServiceError("eddy serve ended (\(running.ending)):\n\(running.stderr.suffix(3000))") }
            usleep(50_000)
        }
        running.signal(SIGKILL)
        throw ServiceError("eddy serve did not listen within 60 s:\n\(running.stderr.suffix(3000))")
    }

    /// SIGTERM, then the exit status (0 for a clean stop).
    func stop() throws -> Int32 {
        guard running.isRunning else { return running.process.terminationStatus }
        running.signal(SIGTERM)
        return try running.wait(timeout: 30).status
    }

    deinit { if running.isRunning { running.signal(SIGKILL) } }

    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    /// One request on a fresh connection (raw socket, so tests see exactly what a client
    /// gets); nil when the server does not answer within `timeout`.
    func request(_ method: String, _ path: String, body: [UInt8] = [], headers: [String: String] = [:], timeout: TimeInterval = 30) -> Answer? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connectLoopback(fd, port: port) else { return nil }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let bytes = Array((head + "\r\n").utf8) + body
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }  // the server may refuse early (413) and close
            sent += n
        }
        let text = String(decoding: readToEnd(fd), as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let lines = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ")[1]) else { return nil }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(status: status, headers: fields, body: String(text[split.upperBound...]))
    }

    func post(_ path: String, _ body: String, headers: [String: String] = [:], timeout: TimeInterval = 30) -> Answer? {
        request("POST", path, body: Array(body.utf8), headers: headers, timeout: timeout)
    }

    /// A metric's value from /metrics (the sum over label sets matching `labels`).
    func metric(_ name: String, _ labels: [String] = []) -> Double {
        guard let text = request("GET", "/metrics")?.body else { return -1 }
        return text.split(separator: "\n").filter { line in
            (line.hasPrefix(name + "{") || line.hasPrefix(name + " ")) && labels.allSatisfy { line.contains($0) }
        }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}

extension LocalServices {
    /// A runtime config with a serve: section for ingest into `topology`.
    func writeServeConfig(name: String, topology: String, serve extra: String = "", ingest: String = "") throws -> String {
        let path = try writeRuntimeConfig(name: name)
        let text = try String(contentsOfFile: path, encoding: .utf8) + """

            serve:
              port: 0
            \(extra.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
              ingest:
                topology: "\(topology)"
                partitions: 4
            \(ingest.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A runtime config (100–200 ms commits), generated events on `topic` (and the item
    /// catalog on `catalogTopic`), and Redis filled by `Topologies/recs.yaml` (and
    /// `catalog.yaml`) run over them until caught up.
    func recsState(name: String, topic: String, events: Int, users: Int, items: Int, categories: Int, seed: UInt64,
                   catalogTopic: String? = nil, commitIntervalMs: Int = 200) throws -> (config: String, recs: String, catalog: String?) {
        let config = try writeRuntimeConfig(name: name, commitIntervalMs: commitIntervalMs)
        var generate = ["generate", "--events", String(events), "--users", String(users), "--items", String(items), "--categories", String(categories),
                        "--seed", String(seed), "--topic", topic, "--partitions", "4", "--config", config]
        if let catalogTopic { generate += ["--catalog-topic", catalogTopic] }
        let gen = try EddyCLI.run(generate)
        guard gen.status == 0 else { throw ServiceError("eddy generate failed: \(gen.stderr)") }
        let recs = try shippedTopology("recs", topic: topic)
        var catalog: String?
        if let catalogTopic {
            let path = workDir.appendingPathComponent("catalog-topology.yaml").path
            try String(contentsOf: Self.packageRoot.appendingPathComponent("Topologies/catalog.yaml"), encoding: .utf8)
                .replacingOccurrences(of: "topic: catalog\n", with: "topic: \(catalogTopic)\n").write(toFile: path, atomically: true, encoding: .utf8)
            catalog = path
        }
        for topology in [catalog, recs].compactMap({ $0 }) {
            let run = try EddyCLI.run(["run", topology, "--config", config, "--until-caught-up"])
            guard run.status == 0 else { throw ServiceError("eddy run \(topology) failed: \(run.stderr.suffix(3000))") }
        }
        return (config, recs, catalog)
    }
}
