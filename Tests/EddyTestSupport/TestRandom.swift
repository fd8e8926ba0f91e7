/// A seeded generator for test input (a 64-bit LCG with Knuth's MMIX constants): the same
/// seed gives the same input, and it shares no code with what the tests check.
public struct TestRandom {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A number in 0..<n.
    public mutating func below(_ n: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(n))
    }
}
