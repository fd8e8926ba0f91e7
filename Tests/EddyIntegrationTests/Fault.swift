import Foundation

/// One fault injected into LocalServices (started with `faultProxies`) and into an `eddy
/// run`'s metrics port, from `begin()` until `end()`.
final class Fault: @unchecked Sendable {
    enum Kind: String, CaseIterable {
        /// The broker's proxy resets every connection and refuses new ones.
        case brokerDrop = "broker-drop"
        /// redis-server stopped, then started again with the data it saved.
        case redisRestart = "redis-restart"
        /// redis-server stopped, then started again empty.
        case redisRestartEmpty = "redis-restart-empty"
        /// Redis at its memory limit (noeviction): every write refused with OOM.
        case redisFull = "redis-oom"
        /// Redis's proxy accepts and reads but never answers.
        case redisBlackhole = "redis-blackhole"
        /// Scrapes of /metrics that reset their connection before the answer.
        case metricsResets = "metrics-resets"
    }

    let kind: Kind
    private let services: LocalServices
    private let metricsPort: Int
    private let lock = NSLock()
    private var resetting = false
    private let resetsDone = DispatchSemaphore(value: 0)

    init(_ kind: Kind, services: LocalServices, metricsPort: Int) {
        self.kind = kind
        self.services = services
        self.metricsPort = metricsPort
    }

    func begin() throws {
        switch kind {
        case .brokerDrop: try services.brokerProxy!.set(.drop)
        case .redisRestart, .redisRestartEmpty: services.stopRedis()
        case .redisFull: try services.limitRedisMemory()
        case .redisBlackhole: try services.redisProxy!.set(.blackhole)
        case .metricsResets:
            setResetting(true)
            // Scrapes keep coming throughout, as from a Prometheus whose timeout is too short.
            // Every other one resets before it sent its request.
            Thread.detachNewThread { [self] in
                var withRequest = false
                while isResetting {
                    resetConnection(port: metricsPort, after: withRequest ? "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" : nil)
                    withRequest.toggle()
                    usleep(20_000)
                }
                resetsDone.signal()
            }
        }
    }

    func end() throws {
        switch kind {
        case .brokerDrop: try services.brokerProxy!.set(.pass)
        case .redisRestart: try services.restartRedis(withData: true)
        case .redisRestartEmpty: try services.restartRedis(withData: false)
        case .redisFull: try services.unlimitRedisMemory()
        case .redisBlackhole: try services.redisProxy!.set(.pass)
        case .metricsResets:
            setResetting(false)
            resetsDone.wait()
        }
    }

    private var isResetting: Bool { lock.withLock { resetting } }
    private func setResetting(_ value: Bool) { lock.withLock { resetting = value } }
}
