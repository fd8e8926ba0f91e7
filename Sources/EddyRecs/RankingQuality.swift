import Foundation

/// Hit rate and NDCG at a few cutoffs over prequential trials: for each held-out event,
/// was its item among the top k recommended before it happened, and how high.
public struct RankingQuality: Sendable {
    public let cutoffs: [Int]
    public private(set) var trials = 0
    private var hits: [Int]
    private var gains: [Double]

    public init(cutoffs: [Int] = [10, 20]) {
        self.cutoffs = cutoffs
        hits = cutoffs.map { _ in 0 }
        gains = cutoffs.map { _ in 0 }
    }

    /// One trial: the list recommended (best first) and the item that came next.
    public mutating func add(recommended: [String], actual: String) {
        trials += 1
        guard let position = recommended.firstIndex(of: actual) else { return }
        for (i, k) in cutoffs.enumerated() where position < k {
            hits[i] += 1
            // One relevant item: the ideal DCG is 1, so NDCG is the item's discount.
            gains[i] += 1 / log2(Double(position) + 2)
        }
    }

    /// HR@k: the share of trials whose item was in the top k.
    public func hitRate(at k: Int) -> Double { share(hits.map(Double.init), k) }

    /// NDCG@k, averaged over trials.
    public func ndcg(at k: Int) -> Double { share(gains, k) }

    private func share(_ values: [Double], _ k: Int) -> Double {
        guard trials > 0, let i = cutoffs.firstIndex(of: k) else { return 0 }
        return values[i] / Double(trials)
    }
}
