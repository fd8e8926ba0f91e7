import Foundation

/// Produces generated events to a topic in the background, one `eddy generate` chunk after
/// another, as a live stream keeps arriving while faults hit the consumer (a chunk waits
/// out a broker outage in the producer). Keeps the chunks' files for the reference.
final class EventFeeder: @unchecked Sendable {
    private let topic: String
    private let config: String
    private let dir: URL
    private let queue = DispatchQueue(label: "eddy-event-feeder")
    private let lock = NSLock()
    private var files: [String] = []
    private var failures: [String] = []
    private var queued = 0

    init(topic: String, config: String, dir: URL) {
        self.topic = topic
        self.config = config
        self.dir = dir
    }

    /// Queues a chunk of `events` events (5000 users, 4 partitions, a seed of its own).
    func produce(_ events: Int) {
        let chunk = lock.withLock { defer { queued += 1 }; return queued }
        queue.async { [self] in
            let file = dir.appendingPathComponent("\(topic)-\(chunk).jsonl").path
            do {
                let gen = try EddyCLI.run(["generate", "--events", "\(events)", "--users", "5000", "--seed", "\(1000 + chunk)",
                                           "--topic", topic, "--partitions", "4", "--out", file, "--config", config])
                lock.withLock {
                    if gen.status == 0 { files.append(file) } else { failures.append("chunk \(chunk): \(gen.stderr.suffix(2000))") }
                }
            } catch {
                lock.withLock { failures.append("chunk \(chunk): \(error)") }
            }
        }
    }

    /// Waits for every queued chunk; their files, or the first failure.
    func finish() throws -> [String] {
        queue.sync {}
        return try lock.withLock {
            if let failure = failures.first { throw ServiceError("eddy generate failed: \(failure)") }
            return files
        }
    }
}
