import Dispatch
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// An HTTP/1.1 server for Eddy's endpoints (`/metrics` today, the query endpoint later):
/// a Hummingbird router (NIO's event loops, a Swift task per connection), started and
/// stopped from synchronous code.
///
/// Hummingbird's idle timeout is the limit that keeps one client from holding the server: it
/// runs from the last complete request part, so an idle keep-alive connection and a client
/// that sends half a request (or trickles one) are both closed when it expires, and
/// connections never queue behind each other (each is served on its own channel).
public final class HTTPServer: Sendable {
    public let host: String
    /// The bound port (the one the OS picked when asked for 0).
    public let port: Int
    private let group: ServiceGroup
    private let running: Task<Void, Never>
    private let stopped = DispatchSemaphore(value: 0)

    /// How long `stop()` waits for in-flight responses before it cancels the server.
    static let stopGrace: DispatchTimeInterval = .seconds(2)

    /// Binds `host:port` (0: any free port) and returns once the server accepts connections.
    /// Throws `HTTPServerError` with the OS reason when it cannot listen.
    public init<Context: RequestContext>(host: String = "127.0.0.1", port: Int, router: Router<Context>,
                                         idleTimeout: Duration, logger: Logger) throws where Context.Source == ApplicationRequestContextSource {
        self.host = host
        let bound = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<Int, any Error>?>(nil)
        // Hummingbird logs its own start and stop lines at info; the owner logs the address.
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .warning)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: TimeAmount(idleTimeout))),
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                outcome.withLock { $0 = .success(channel.localAddress?.port ?? port) }
                bound.signal()
            },
            logger: serverLogger)
        // No signal handling here: the process owns SIGINT/SIGTERM and calls stop().
        group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: serverLogger))
        running = Task.detached { [group, stopped] in
            do {
                try await group.run()
            } catch {
                outcome.withLock { if $0 == nil { $0 = .failure(error) } }
            }
            bound.signal()  // a bind failure ends run() before onServerRunning
            stopped.signal()
        }
        bound.wait()
        switch outcome.withLock({ $0 }) {
        case .success(let port)?:
            self.port = port
        case .failure(let error)?:
            throw HTTPServerError.cannotListen(host: host, port: port, reason: error)
        case nil:
            throw HTTPServerError.cannotListen(host: host, port: port, reason: nil)
        }
    }

    /// Stops accepting, lets responses in flight finish (idle connections close at once),
    /// and cancels what is still running after `stopGrace`, so a stop never hangs.
    public func stop() {
        let group = self.group
        Task.detached { await group.triggerGracefulShutdown() }
        if stopped.wait(timeout: .now() + Self.stopGrace) == .timedOut { running.cancel() }
    }
}
