import EddyRecs
import Synchronization

/// The model's item factors as last read (`item:emb:*`), with the namespace prefix they
/// were read under, for `ServingRecsState`. `RecommendationService` reads them again every
/// `refreshInterval` when some variant weighs the model, in a task of their own (a SCAN
/// walks the whole keyspace: it must not hold up the namespace and popular-items refresh).
/// Until the first read, and while the active namespace is not the one they were read
/// under, there are none: a user's vector is never dotted with another model's items.
final class ModelSnapshot: Sendable {
    private let factors = Mutex<(prefix: String, factors: ItemFactors)?>(nil)
    static let refreshInterval = Duration.seconds(10)

    /// The factors read under `keys`' namespace, or none.
    func current(for keys: RecsKeys) -> ItemFactors {
        factors.withLock { $0?.prefix == keys.prefix ? $0!.factors : ItemFactors() }
    }

    var prefix: String? { factors.withLock { $0?.prefix } }

    /// Whether the first read since serve started has ended, read or failed: until then
    /// answers leave the model out and /readyz says not ready. (A read that failed is not
    /// waited for: Redis' own readiness check covers a Redis that does not answer.)
    var firstReadEnded: Bool { firstRead.load(ordering: .acquiring) }
    private let firstRead = Atomic<Bool>(false)

    func endFirstRead() { firstRead.store(true, ordering: .releasing) }

    func replace(with new: ItemFactors, readUnder keys: RecsKeys) { factors.withLock { $0 = (keys.prefix, new) } }
}
