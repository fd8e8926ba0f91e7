/// Samples ranks 0..<n with probability proportional to 1/(rank+1)^s (binary search in a
/// precomputed CDF).
struct ZipfSampler {
    private let cdf: [Double]

    init(count: Int, exponent: Double) {
        var total = 0.0
        var cdf = [Double]()
        cdf.reserveCapacity(count)
        for rank in 0..<count {
            total += 1 / pow(Double(rank + 1), exponent)
            cdf.append(total)
        }
        self.cdf = cdf.map { $0 / total }
    }

    func sample(_ rng: inout SplitMix64) -> Int {
        let u = rng.unit()
        var lo = 0, hi = cdf.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

import Foundation
