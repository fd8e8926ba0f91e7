import EddyKafka
import Synchronization

/// Decides when a run with `--until-caught-up` is done, for the stream threads of one
/// process: every source partition has reached its end (partition EOF — never ListOffsets,
/// which Tansu answers one batch short), every thread is settled (nothing uncommitted,
/// nothing waiting for a marker, nothing owed downstream), and every repartition partition
/// has been consumed past everything written to it.
final class CatchUpTracker: Sendable {
    private struct State {
        var atEnd = Set<Int32>()
        var unsettled = Set<Int>()
        /// Repartition partitions: the offset past the last record written, and past the
        /// last record consumed.
        var written: [TopicPartition: Int64] = [:]
        var consumed: [TopicPartition: Int64] = [:]
    }

    private let partitionCount: Int
    private let state: Mutex<State>

    init(partitionCount: Int, threads: Int) {
        self.partitionCount = partitionCount
        state = Mutex(State(unsettled: Set(0..<threads)))
    }

    func reachedEnd(_ partition: Int32) { state.withLock { _ = $0.atEnd.insert(partition) } }
    func moved(_ partition: Int32) { state.withLock { _ = $0.atEnd.remove(partition) } }

    func setSettled(thread: Int, _ settled: Bool) {
        state.withLock { if settled { $0.unsettled.remove(thread) } else { $0.unsettled.insert(thread) } }
    }

    func wrote(_ tp: TopicPartition, upTo end: Int64) {
        state.withLock { $0.written[tp] = max($0.written[tp] ?? 0, end) }
    }

    func consumed(_ tp: TopicPartition, upTo end: Int64) {
        state.withLock { $0.consumed[tp] = max($0.consumed[tp] ?? 0, end) }
    }

    var allCaughtUp: Bool {
        state.withLock { s in
            s.atEnd.count >= partitionCount && s.unsettled.isEmpty && s.written.allSatisfy { s.consumed[$0.key] ?? 0 >= $0.value }
        }
    }
}
