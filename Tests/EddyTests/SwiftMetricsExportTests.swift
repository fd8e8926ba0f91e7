@testable import EddyStreams
import MetricsTestKit
import XCTest

/// A swift-metrics backend sees the same names and labels as /metrics, counters grow by
/// what happened between publishes, and a partition that moved away takes its gauge along.
final class SwiftMetricsExportTests: XCTestCase {
    func testCountersGetIncreasesGaugesGetValuesWithPrometheusNamesAndLabels() throws {
        let metrics = StreamsMetrics()
        let backend = TestMetrics()
        let export = SwiftMetricsExport(factory: backend)
        metrics.recordsIn.add(10, ordering: .relaxed)
        metrics.setLag("clicks-0", 5)
        metrics.setLag("clicks-1", 7)
        export.publish(metrics.families(application: "a"))
        metrics.recordsIn.add(32, ordering: .relaxed)
        metrics.setLag("clicks-1", nil)
        export.publish(metrics.families(application: "a"))

        let recordsIn = try backend.expectCounter("eddy_records_in_total", [("application", "a")])
        XCTAssertEqual(recordsIn.values, [10, 32])
        XCTAssertEqual(recordsIn.totalValue, 42)
        XCTAssertEqual(try backend.expectGauge("eddy_consumer_lag", [("application", "a"), ("partition", "clicks-0")]).lastValue, 5)
        XCTAssertThrowsError(try backend.expectGauge("eddy_consumer_lag", [("application", "a"), ("partition", "clicks-1")]),
                             "the moved partition's gauge is destroyed")
        // Every metric of /metrics reaches the backend under its Prometheus name.
        let exported = Set(backend.counters.map(\.label) + backend.recorders.map(\.label))
        XCTAssertEqual(exported, Set(metrics.families(application: "a").filter { !$0.samples.isEmpty }.map(\.name)))
    }
}
