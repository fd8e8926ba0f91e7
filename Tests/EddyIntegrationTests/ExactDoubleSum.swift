/// A reference for Eddy's sums: doubles added exactly and rounded once. Every double of at
/// least 2^-11 (every price here) is a whole number of 2^-64, so they add exactly as
/// Int128s. Adding the doubles one by one instead rounds after every addition, and with
/// three or more terms can come out an ulp away.
struct ExactDoubleSum {
    private var units: Int128 = 0

    mutating func add(_ x: Double) {
        precondition(x == 0 || abs(x) >= 0x1p-11, "\(x) is not a whole number of 2^-64")
        units += Int128(x * 0x1p64)
    }

    var value: Double { Double(units) * 0x1p-64 }
}
