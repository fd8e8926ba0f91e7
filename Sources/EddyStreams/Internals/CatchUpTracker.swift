import Synchronization

/// Knows which source partitions have reached their end (partition EOF — never ListOffsets,
/// which Tansu answers one batch short). Shared by the stream threads of one process.
final class CatchUpTracker: Sendable {
    private let partitionCount: Int
    private let atEnd = Mutex<Set<Int32>>([])

    init(partitionCount: Int) {
        self.partitionCount = partitionCount
    }

    func reachedEnd(_ partition: Int32) { _ = atEnd.withLock { $0.insert(partition) } }
    func moved(_ partition: Int32) { _ = atEnd.withLock { $0.remove(partition) } }
    var allCaughtUp: Bool { atEnd.withLock { $0.count >= partitionCount } }
}
