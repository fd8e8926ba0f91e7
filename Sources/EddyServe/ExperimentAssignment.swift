import EddyRecs

/// Which variant of the experiment a user is in: a stable hash of the experiment's name and
/// the user id, so a user stays in one variant across requests, restarts and serve
/// instances, and another experiment splits users independently. The hash is FNV-1a
/// (64 bit) of `name`, a zero byte and `user`, in UTF-8, then MurmurHash3's 64-bit
/// finalizer (FNV-1a alone barely moves its top bits when only the last bytes differ:
/// users u1…u40 all fell in one half); its top 53 bits as a fraction of 2^53 pick the
/// variant by the cumulative shares — written out so other services can compute the same
/// assignment.
struct ExperimentAssignment: Sendable {
    struct Variant: Sendable {
        let name: String
        let scoring: Scoring
    }

    /// nil: no experiment (every user gets `fallbackVariant`).
    let experiment: String?
    private let variants: [Variant]
    /// Each variant's upper bound in [0, 1).
    private let bounds: [Double]

    init(_ experiment: ServeConfig.Experiment?, defaultScoring: Scoring) {
        guard let experiment, !experiment.variants.isEmpty else {
            self.experiment = nil
            variants = [Variant(name: "default", scoring: defaultScoring)]
            bounds = [1]
            return
        }
        self.experiment = experiment.name
        variants = experiment.variants.map { Variant(name: $0.name, scoring: $0.scoring) }
        let total = experiment.variants.reduce(0) { $0 + $1.share }
        var sum = 0.0
        bounds = experiment.variants.map { sum += $0.share; return sum / total }
    }

    var variantNames: [String] { variants.map(\.name) }
    /// Whether some variant scores with the model (the service then keeps its factors).
    var weighsModel: Bool { variants.contains { $0.scoring.model > 0 } }

    func variant(of user: String) -> Variant {
        guard let experiment else { return variants[0] }
        let x = Self.fraction(experiment: experiment, user: user)
        return variants[bounds.firstIndex { x < $0 } ?? variants.count - 1]
    }

    static func fraction(experiment: String, user: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array(experiment.utf8) + [0] + Array(user.utf8) {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return Double(hash >> 11) / Double(UInt64(1) << 53)
    }
}
