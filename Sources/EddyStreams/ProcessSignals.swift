import Dispatch
import Foundation
import Logging
import Synchronization

/// The signal dispositions of a process that runs Eddy.
public enum ProcessSignals {
    /// Ignores SIGPIPE in the whole process. A write to a socket whose peer has gone (a
    /// `/metrics` client that reset its connection, Redis closing one mid-write) then fails
    /// with EPIPE, which the writer reports or retries; left at its default, the signal
    /// ended the process with status 141 and no log line. `StreamsRuntime` calls it, so
    /// every process that runs a topology has it; the `eddy` CLI calls it at start.
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// SIGINT and SIGTERM: the first calls `requestStop` (a graceful stop: commit, close);
    /// a second, of either kind, logs and ends the process at once with status 128 + its
    /// number (130, 143), because the graceful stop may never finish (start-up waiting for
    /// a Redis that does not answer). Keep the returned sources alive while it applies.
    public static func handleStopSignals(logger: Logger, requestStop: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
        let state = StopState()
        return [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)  // the dispatch source alone sees it
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if state.received.exchange(true, ordering: .relaxed) {
                    logger.critical("second signal \(sig): exiting now (status \(128 + sig)) without committing")
                    fflush(nil)
                    // _exit, not exit: atexit handlers and C++ static destructors (RocksDB)
                    // would run while stream threads still use them, and could hang.
                    _exit(128 + sig)
                }
                logger.info("signal \(sig): committing and stopping (again to exit at once)")
                requestStop()
            }
            source.resume()
            return source
        }
    }

    /// Whether a stop signal has come; shared by the SIGINT and SIGTERM handlers.
    private final class StopState: Sendable {
        let received = Atomic(false)
    }
}
