import EddyRecs
import Synchronization

/// The model's item factors as last read from the active namespace (`item:emb:*`), for
/// `ServingRecsState`. `RecommendationService` reads them again every `refreshInterval`
/// when some variant weighs the model; until the first read, the model signal is absent
/// (answers blend the other signals).
final class ModelSnapshot: Sendable {
    private let factors = Mutex(ItemFactors())
    /// A pass over the catalog's factors costs about a millisecond per thousand items.
    static let refreshInterval = Duration.seconds(10)

    var current: ItemFactors { factors.withLock { $0 } }
    func replace(with new: ItemFactors) { factors.withLock { $0 = new } }
}
