/// Sums of doubles that come out bit for bit the same whatever order, and whatever grouping
/// into partials, the terms arrive in: each term is turned into a 128-bit integer count of
/// 2^-`fractionBits` (dropping what lies below, which depends on the term alone) and the
/// integers add exactly. A re-keyed aggregate's partials are combined per upstream commit
/// and merged in arrival order, both of which depend on timing; with floating-point
/// additions a replay then differed from the live run in the last bits (issue 13, item 6).
///
/// Beyond ±2^(126 − fractionBits) a sum saturates instead of trapping or wrapping (nowhere
/// near it for counts, prices or decayed weights; said where each sum is declared); only a
/// saturated sum with terms of both signs depends on their order.
struct FixedPointSum: Equatable {
    private(set) var raw: Int128

    static let zero = FixedPointSum(raw: 0)
    /// Two sums within it add without overflowing Int128.
    private static let limit = Int128(1) << 126 - 1

    init(raw: Int128) { self.raw = raw }

    /// From its two 64-bit halves (how tables and encoded values keep it).
    init(low: UInt64, high: UInt64) { raw = Int128(Int64(bitPattern: high)) << 64 | Int128(low) }

    var low: UInt64 { UInt64(truncatingIfNeeded: raw) }
    var high: UInt64 { UInt64(truncatingIfNeeded: raw >> 64) }

    /// `value` in units of 2^-`fractionBits`, truncated toward zero.
    @inline(__always)
    init(_ value: Double, fractionBits: Int) {
        let scaled = value * Self.powerOfTwo(fractionBits)  // exact: a power of two
        let magnitude = abs(scaled)
        guard magnitude < 0x1p126 else {
            raw = scaled.isNaN ? 0 : (scaled < 0 ? -Self.limit : Self.limit)
            return
        }
        // Two 64-bit halves by hand: 11 ns against 28 ns for the standard library's generic
        // Int128(Double), the same results (-O, 1M random values). Both halves are exact:
        // high·2^64 is at least half of `magnitude` whenever it is not 0 (Sterbenz), and
        // UInt64(low) drops only the fraction.
        let high = (magnitude * 0x1p-64).rounded(.down)
        let low = magnitude - high * 0x1p64
        let bits = Int128(UInt64(high)) << 64 | Int128(UInt64(low))
        raw = scaled < 0 ? -bits : bits
    }

    @inline(__always)
    static func += (sum: inout FixedPointSum, term: FixedPointSum) {
        sum.raw = min(max(sum.raw &+ term.raw, -limit), limit)  // |terms| ≤ 2^126: no wrap
    }

    /// The sum as a double (rounded to nearest: the same bits give the same double).
    @inline(__always)
    func double(fractionBits: Int) -> Double { Double(raw) * Self.powerOfTwo(-fractionBits) }

    @inline(__always)
    static func powerOfTwo(_ n: Int) -> Double { Double(sign: .plus, exponent: n, significand: 1) }
}
