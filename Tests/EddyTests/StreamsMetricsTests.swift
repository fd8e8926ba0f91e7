import EddyStreams
import XCTest

final class StreamsMetricsTests: XCTestCase {
    /// Lag is unknown until a commit measured it: a fresh start must not claim "lag 0".
    func testLagIsUnknownUntilMeasuredThenSummedOverPartitions() {
        let metrics = StreamsMetrics()
        XCTAssertNil(metrics.totalLag)
        metrics.setLag("clicks-0", 5)
        metrics.setLag("clicks-1", 7)
        XCTAssertEqual(metrics.totalLag, 12)
        metrics.setLag("clicks-1", nil)  // partition moved away
        XCTAssertEqual(metrics.totalLag, 5)
        XCTAssertTrue(metrics.prometheusText(application: "a").contains("eddy_consumer_lag{application=\"a\",partition=\"clicks-0\"} 5"))
    }

    /// An application name is free text from a topology file; the format reserves `\` and `"`.
    func testPrometheusLabelValuesAreEscaped() {
        XCTAssertTrue(StreamsMetrics().prometheusText(application: "a\"b\\c")
            .contains(#"eddy_records_in_total{application="a\"b\\c"} 0"#))
    }
}
