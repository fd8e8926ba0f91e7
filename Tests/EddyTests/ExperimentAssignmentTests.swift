import EddyRecs
@testable import EddyServe
import XCTest

final class ExperimentAssignmentTests: XCTestCase {
    private let experiment = ServeConfig.Experiment(name: "exp", variants: [
        .init(name: "control", share: 1, scoring: .popularityOnly), .init(name: "blend", share: 3, scoring: Scoring()),
    ])

    /// FNV-1a 64 written out independently, on the bytes the documentation names.
    private func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in bytes { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return h
    }

    /// MurmurHash3's fmix64.
    private func fmix64(_ x: UInt64) -> UInt64 {
        var h = x
        h = (h ^ (h >> 33)) &* 0xff51afd7ed558ccd
        h = (h ^ (h >> 33)) &* 0xc4ceb9fe1a85ec53
        return h ^ (h >> 33)
    }

    func testTheFractionIsTheDocumentedHashOfNameZeroAndUser() {
        // The published FNV-1a test vector, so the reference itself is right.
        XCTAssertEqual(fnv1a(Array("foobar".utf8)), 0x8594_4171_f739_67e8)
        for user in ["u1", "u22", "ü-ß", ""] {
            let h = fmix64(fnv1a(Array("exp".utf8) + [0] + Array(user.utf8)))
            XCTAssertEqual(ExperimentAssignment.fraction(experiment: "exp", user: user), Double(h >> 11) / 9_007_199_254_740_992, user)
        }
    }

    func testUsersSplitByTheSharesAndStayInTheirVariant() {
        let a = ExperimentAssignment(experiment, defaultScoring: Scoring())
        let users = (0..<20_000).map { "u\($0)" }
        let control = users.filter { a.variant(of: $0).name == "control" }.count
        // Binomial(20000, 1/4): sd ≈ 61; 5 sd either side.
        XCTAssert((4_700...5_300).contains(control), "\(control) of 20000 in control, share 1 of 4")
        XCTAssertTrue(users.prefix(100).allSatisfy { a.variant(of: $0).name == ExperimentAssignment(experiment, defaultScoring: Scoring()).variant(of: $0).name })
        XCTAssertEqual(a.variant(of: users[0]).scoring == .popularityOnly, a.variant(of: users[0]).name == "control")
    }

    func testSequentialIdsThatDifferInTheirLastBytesSplitEvenly() {
        let a = ExperimentAssignment(experiment, defaultScoring: Scoring())
        // u1…u40 fell all in one variant with FNV-1a alone; Binomial(400, 1/4): sd ≈ 8.7.
        let control = (1...400).filter { a.variant(of: "u\($0)").name == "control" }.count
        XCTAssert((56...144).contains(control), "\(control) of 400 sequential ids in control, share 1 of 4")
    }

    func testAnotherExperimentSplitsUsersIndependently() {
        let half: [ServeConfig.Variant] = [.init(name: "a", share: 1, scoring: Scoring()), .init(name: "b", share: 1, scoring: Scoring())]
        let x = ExperimentAssignment(.init(name: "x", variants: half), defaultScoring: Scoring())
        let y = ExperimentAssignment(.init(name: "y", variants: half), defaultScoring: Scoring())
        let same = (0..<20_000).filter { x.variant(of: "u\($0)").name == y.variant(of: "u\($0)").name }.count
        XCTAssert((9_650...10_350).contains(same), "\(same) of 20000 agree; independent halves agree about half the time")
    }

    func testWithoutAnExperimentEveryoneGetsTheConfiguredWeights() {
        var weights = Scoring()
        weights.trending = 0.3
        let a = ExperimentAssignment(nil, defaultScoring: weights)
        XCTAssertNil(a.experiment)
        XCTAssertEqual(a.variant(of: "anyone").name, "default")
        XCTAssertEqual(a.variant(of: "anyone").scoring, weights)
    }
}
