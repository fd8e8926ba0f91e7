import Foundation
import Synchronization

/// The `eddy run` processes the live page shows (`serve.pipeline_metrics`): each one's
/// `/metrics` read every `interval` on a thread of its own (blocking sockets, a one-second
/// time-out each), reduced to what the page needs — its application, records processed,
/// their rate between the last two reads, and the consumer lag summed over partitions.
final class PipelineWatch: Sendable {
    struct Status: Sendable {
        let url: String
        var up = false
        var application: String?
        var processed: Int?
        var perSecond: Double?
        var lag: Int?
        var error: String? = "not read yet"
        var readAt: ContinuousClock.Instant?
    }

    static let interval = Duration.seconds(2)
    private let endpoints: [ServeConfig.MetricsEndpoint]
    private let statuses: Mutex<[Status]>
    private let stopped = Atomic<Bool>(false)

    init(_ endpoints: [ServeConfig.MetricsEndpoint]) {
        self.endpoints = endpoints
        statuses = Mutex(endpoints.map { Status(url: $0.url) })
        guard !endpoints.isEmpty else { return }
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                for (i, endpoint) in endpoints.enumerated() { refresh(endpoint, into: i) }
                Thread.sleep(forTimeInterval: Double(Self.interval.components.seconds))
            }
        }
        thread.name = "eddy-serve-pipelines"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    var current: [Status] { statuses.withLock { $0 } }

    /// `GET /v1/pipeline`'s answer.
    var json: JSONValue {
        .object([("pipelines", .array(current.map { s in
            .object([("url", .string(s.url)), ("up", .bool(s.up)), ("application", s.application.map(JSONValue.string) ?? .null),
                     ("records_processed", s.processed.map(JSONValue.int) ?? .null), ("records_per_second", s.perSecond.map(JSONValue.double) ?? .null),
                     ("lag", s.lag.map(JSONValue.int) ?? .null), ("error", s.error.map(JSONValue.string) ?? .null)])
        }))])
    }

    private func refresh(_ endpoint: ServeConfig.MetricsEndpoint, into i: Int) {
        let now = ContinuousClock.now
        let outcome = Self.get(endpoint)
        statuses.withLock { all in
            var s = all[i]
            switch outcome {
            case .failure(let error):
                s.up = false
                s.error = error.description
                s.perSecond = nil
            case .success(let text):
                let m = Self.summary(text)
                if let processed = m.processed, let before = s.processed, let then = s.readAt, s.up, processed >= before {
                    s.perSecond = Double(processed - before) / (now - then).seconds
                } else {
                    s.perSecond = nil
                }
                (s.up, s.error, s.application, s.processed, s.lag, s.readAt) = (true, nil, m.application, m.processed, m.lag, now)
            }
            all[i] = s
        }
    }

    struct ReadError: Error, CustomStringConvertible { let description: String }

    /// One HTTP/1.1 GET on a fresh connection; the body of a 200.
    static func get(_ endpoint: ServeConfig.MetricsEndpoint) -> Result<String, ReadError> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return .failure(ReadError(description: "no socket: errno \(errno)")) }
        defer { close(fd) }
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
        guard inet_pton(AF_INET, endpoint.host, &address.sin_addr) == 1 else { return .failure(ReadError(description: "not an IPv4 address: \(endpoint.host)")) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return .failure(ReadError(description: "cannot connect to \(endpoint.host):\(endpoint.port): \(String(cString: strerror(errno)))")) }
        let request = "GET \(endpoint.path) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\nConnection: close\r\n\r\n"
        guard request.withCString({ write(fd, $0, strlen($0)) }) > 0 else { return .failure(ReadError(description: "the request could not be sent")) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 16 << 20 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return .failure(ReadError(description: "no answer within 1 s")) }
        guard text.hasPrefix("HTTP/1.1 200") || text.hasPrefix("HTTP/1.0 200") else {
            return .failure(ReadError(description: "answered \(text.prefix { $0 != "\r" })"))
        }
        return .success(String(text[split.upperBound...]))
    }

    /// The sums the page shows, from Prometheus text.
    static func summary(_ text: String) -> (application: String?, processed: Int?, lag: Int?) {
        var application: String?, processed: Int?, lag: Int?
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let name = line.prefix { $0 != "{" && $0 != " " }
            guard name == "eddy_records_processed_total" || name == "eddy_consumer_lag",
                  let number = line.split(separator: " ").last.flatMap({ Double($0) }), let value = Int(exactly: number.rounded()) else { continue }
            if application == nil, let range = line.range(of: #"application=""#) {
                application = String(line[range.upperBound...].prefix { $0 != "\"" })
            }
            if name == "eddy_records_processed_total" { processed = (processed ?? 0) &+ value } else { lag = (lag ?? 0) &+ value }
        }
        return (application, processed, lag)
    }
}
