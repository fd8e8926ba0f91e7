@testable import EddyGen
@testable import EddyStreams
import XCTest

/// The sums of `aggregate` and of `decay` partials: exact, so any order of terms (partials
/// merged in arrival order, retractions) gives the same bits.
final class FixedPointSumTests: XCTestCase {
    /// Prices, then an aggregate of an aggregate retracting every one of them in another
    /// order: exactly zero (adding and subtracting the doubles leaves ~1e-12).
    func testTermsAddedAndRetractedInAnotherOrderLeaveExactlyZero() {
        var rng = SplitMix64(seed: 11)
        let prices = (0..<10_000).map { _ in Double(rng.next() % 100_000) / 100 + 0.01 }
        var sum = FixedPointSum.zero
        for p in prices { sum += FixedPointSum(p, fractionBits: 64) }
        var floats = prices.reduce(0, +)
        for p in prices.shuffled(using: &rng) {
            sum += FixedPointSum(-p, fractionBits: 64)
            floats -= p
        }
        XCTAssertEqual(sum, .zero)
        XCTAssertNotEqual(floats, 0, "the doubles would not have shown the difference")
    }

    func testEveryOrderGivesTheSameBits() {
        var rng = SplitMix64(seed: 12)
        let terms = (0..<5_000).map { _ in Double(Int64(rng.next() % 2_000_001) - 1_000_000) * 1.37e-3 }
        var reference = FixedPointSum.zero
        for t in terms { reference += FixedPointSum(t, fractionBits: 64) }
        for _ in 0..<5 {
            var sum = FixedPointSum.zero
            for t in terms.shuffled(using: &rng) { sum += FixedPointSum(t, fractionBits: 64) }
            XCTAssertEqual(sum, reference)
        }
        // And its double is the sum's, to the double's precision.
        XCTAssertEqual(reference.double(fractionBits: 64), terms.reduce(0, +), accuracy: 1e-6)
    }

    /// Far beyond any count or price it saturates instead of trapping or wrapping.
    func testItSaturatesInsteadOfTrappingOrWrapping() {
        var sum = FixedPointSum(1e30, fractionBits: 64)
        sum += FixedPointSum(1e30, fractionBits: 64)
        XCTAssertGreaterThan(sum.double(fractionBits: 64), 4e18)  // 2^62
        XCTAssertEqual(FixedPointSum(.nan, fractionBits: 64), .zero)
        XCTAssertLessThan(FixedPointSum(-.infinity, fractionBits: 64).double(fractionBits: 64), -4e18)
        let halves = FixedPointSum(-123.456, fractionBits: 64)
        XCTAssertEqual(FixedPointSum(low: halves.low, high: halves.high), halves)
    }
}
