import Dispatch
import EddyRedis
import Foundation

/// Redis for request handlers: hiredis calls block, so they run on a dispatch queue of their
/// own, never on the cooperative pool's threads or NIO's event loops; at most `size` run at
/// once, each on a pooled connection. A call that fails drops its connection (a new one is
/// opened next time), so a Redis that went away and came back is used again by itself.
///
/// `@unchecked Sendable`: the free list is touched only under the lock, and a connection
/// taken from it belongs to one job until it is given back.
final class RedisPool: @unchecked Sendable {
    struct Endpoint: Sendable {
        let host: String
        let port: Int
        let timeoutMs: Int
        let credentials: RedisCredentials?
    }

    private let endpoint: Endpoint
    private let queue = DispatchQueue(label: "eddy-serve-redis", attributes: .concurrent)
    private let slots: DispatchSemaphore
    private let lock = NSLock()
    private var free: [RedisConnection] = []
    private var admitted = 0
    /// Calls running or waiting at most: past that a call fails at once, so a Redis that
    /// stopped answering cannot pile up requests (and parked threads) without bound.
    let maxAdmitted: Int

    struct Busy: Error, CustomStringConvertible {
        let waiting: Int
        var description: String { "\(waiting) Redis calls are already running or waiting (Redis is slow or gone)" }
    }

    init(_ endpoint: Endpoint, size: Int = 8, maxAdmitted: Int = 64) {
        self.endpoint = endpoint
        slots = DispatchSemaphore(value: size)
        self.maxAdmitted = maxAdmitted
    }

    /// Runs `body` with a connection, off the caller's thread; throws `Busy` at once when
    /// `maxAdmitted` calls are ahead of it.
    func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        let ahead = lock.withLock {
            defer { if admitted < maxAdmitted { admitted += 1 } }
            return admitted
        }
        guard ahead < maxAdmitted else { throw Busy(waiting: ahead) }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                slots.wait()
                defer {
                    slots.signal()
                    lock.lock()
                    admitted -= 1
                    lock.unlock()
                }
                do {
                    let connection = try take()
                    do {
                        let result = try body(connection)
                        give(connection)
                        continuation.resume(returning: result)
                    } catch {
                        continuation.resume(throwing: error)  // the connection is dropped
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private func take() throws -> RedisConnection {
        lock.lock()
        let pooled = free.popLast()
        lock.unlock()
        if let pooled { return pooled }
        let connection = try RedisConnection(host: endpoint.host, port: endpoint.port, timeoutMs: endpoint.timeoutMs, credentials: endpoint.credentials)
        connection.maxAttempts = 1  // a request has a client waiting: fail fast, retry on the next
        return connection
    }

    private func give(_ connection: RedisConnection) {
        lock.lock()
        free.append(connection)
        lock.unlock()
    }
}
