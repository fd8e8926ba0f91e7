/// The solve of implicit-feedback ALS for one vector (Hu, Koren, Volinsky 2008, "Collaborative
/// Filtering for Implicit Feedback Datasets"), as the `model` operator applies it per record.
///
/// For a user u with history H (items j with confidence c_j, c_j > 0) and item vectors y:
/// every item is a 0 of confidence w0 (the missing data's weight), each history item a 1 of
/// confidence 1 + c_j, so
///     x_u = (w0·G + Σ_j (1 + c_j − w0) y_j y_jᵀ + λI)⁻¹ · Σ_j (1 + c_j) y_j,   G = Σ_all y yᵀ,
/// the exact minimizer of Σ_all C (p − xᵀy)² + λ|x|² with the other side fixed (w0 = 1 is
/// the paper's; a smaller w0 trusts an unseen item's 0 less). The same
/// equation solves an item against the user vectors. `G` over every vector is what makes a
/// solve cost |H|·k² + k³ rather than one term per item of the catalog: the operator keeps
/// both Grams and updates them as vectors change.
///
/// Pure and deterministic: the same inputs in the same order give the same bits.
struct ImplicitALS {
    let factors: Int
    let regularization: Double
    let missingWeight: Double

    /// Solves for one vector. `gram`: k×k row-major; `history`: the other side's vectors
    /// and the confidences (c_j, without the 1).
    func solve(gram: [Double], history: [(vector: [Double], confidence: Double)]) -> [Double] {
        let k = factors
        var a = gram.map { missingWeight * $0 }
        var b = [Double](repeating: 0, count: k)
        for (y, c) in history {
            for r in 0..<k {
                let cy = (1 + c - missingWeight) * y[r]
                for s in 0..<k { a[r * k + s] += cy * y[s] }
                b[r] += (1 + c) * y[r]
            }
        }
        for r in 0..<k { a[r * k + r] += regularization }
        return Self.choleskySolve(&a, b, k)
    }

    /// Solves A x = b for a symmetric positive definite A (k×k, row-major, overwritten by
    /// its Cholesky factor). A = w0·G + Σ (1 + c − w0) y yᵀ + λI with 0 < w0 ≤ 1 and λ > 0
    /// is positive definite; a
    /// pivot that rounding drove to ≤ 0 is taken as λ, so the solve never fails.
    static func choleskySolve(_ a: inout [Double], _ b: [Double], _ k: Int) -> [Double] {
        for j in 0..<k {
            var d = a[j * k + j]
            for p in 0..<j { d -= a[j * k + p] * a[j * k + p] }
            let pivot = d > 0 ? d.squareRoot() : Double.ulpOfOne.squareRoot()
            a[j * k + j] = pivot
            for i in (j + 1)..<max(j + 1, k) {
                var s = a[i * k + j]
                for p in 0..<j { s -= a[i * k + p] * a[j * k + p] }
                a[i * k + j] = s / pivot
            }
        }
        var y = b
        for i in 0..<k {
            var s = y[i]
            for p in 0..<i { s -= a[i * k + p] * y[p] }
            y[i] = s / a[i * k + i]
        }
        var x = y
        for i in stride(from: k - 1, through: 0, by: -1) {
            var s = x[i]
            for p in (i + 1)..<max(i + 1, k) { s -= a[p * k + i] * x[p] }
            x[i] = s / a[i * k + i]
        }
        return x
    }

    /// Adds `sign` · v vᵀ to a k×k Gram.
    static func addOuter(_ v: [Double], sign: Double, to gram: inout [Double]) {
        let k = v.count
        for r in 0..<k {
            let sv = sign * v[r]
            for s in 0..<k { gram[r * k + s] += sv * v[s] }
        }
    }

    /// The vector a user or item starts from: entries uniform in ±0.01, a fixed function of
    /// its id (FNV-1a of the bytes seeds SplitMix64), so every run starts the same.
    static func initialVector(id: [UInt8], side: UInt8, factors: Int) -> [Double] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in [side] + id {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        var state = h
        return (0..<factors).map { _ in
            state = state &+ 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            return (Double(z >> 11) / Double(1 << 53) - 0.5) * 0.02
        }
    }
}
