import Foundation
import XCTest

/// The live page at `/` in headless Chromium (Debian's package) against a serve over real
/// state and a running `eddy run`: it shows the popular and trending items, a user's
/// recommendations with reasons, an item's co-view neighbours and the pipeline's lag, each
/// as the routes answer them; a screenshot goes to `.test-output/live-page.png`.
final class LivePageIntegrationTests: XCTestCase {
    private static let chromium = "/usr/bin/chromium"

    /// Chromium's rendering of `url` after its scripts ran (virtual time: the page's fetches
    /// finish before the DOM is taken).
    private func chromium(_ arguments: [String], url: String, home: URL) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.chromium)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=\(home.path)/chromium",
                       "--virtual-time-budget=8000"] + arguments + [url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.environment = ["HOME": home.path, "PATH": "/usr/bin:/bin"]
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The `data-item`s of the list with this id, in order.
    private func shown(_ dom: String, list id: String) -> [String] {
        guard let start = dom.range(of: #"<ol id="\#(id)">"#), let end = dom[start.upperBound...].range(of: "</ol>") else { return [] }
        let html = String(dom[start.upperBound..<end.lowerBound])
        let regex = try! NSRegularExpression(pattern: #"data-item="([^"]*)""#)
        return regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).map { String(html[Range($0.range(at: 1), in: html)!]) }
    }

    func testThePageShowsTheStateAndThePipeline() throws {
        continueAfterFailure = false
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else { return XCTFail("Chromium is missing at \(Self.chromium): run scripts/setup") }
        let services = try LocalServices()
        defer { services.stop() }
        let (config, recs, _) = try services.recsState(name: "page", topic: "clicks-page", events: 6000, users: 200, items: 300, categories: 6, seed: 8)
        let metricsPort = try LocalServices.freePort()
        let run = try EddyCLI.start(["run", recs, "--config", config, "--metrics-port", String(metricsPort)])
        defer { run.signal(SIGTERM); _ = try? run.wait(timeout: 30) }
        let serve = try ServeProcess(config: try services.writeServeConfig(name: "serve", topology: recs,
                                                                            serve: #"pipeline_metrics: ["http://127.0.0.1:\#(metricsPort)/metrics"]"#))
        defer { _ = try? serve.stop() }
        // The running eddy run is read once it has its partitions (its lag is then known).
        let deadline = Date().addingTimeInterval(60)
        var pipeline: [String: Any] = [:]
        repeat {
            usleep(500_000)
            pipeline = (serve.request("GET", "/v1/pipeline")?.json["pipelines"] as? [[String: Any]])?.first ?? [:]
        } while !(pipeline["up"] as? Bool == true && pipeline["lag"] is Int) && Date() < deadline
        XCTAssertEqual(pipeline["application"] as? String, "recs", "\(pipeline)")
        XCTAssertLessThan(pipeline["lag"] as? Int ?? .max, 100, "caught up (the lag counts the internal topics' commit markers too): \(pipeline)")
        XCTAssertGreaterThanOrEqual(pipeline["records_processed"] as? Int ?? -1, 0)

        let redis = try services.redis()
        let user = try XCTUnwrap(try redis.send("KEYS", "user:recent:*").strings.sorted().first).dropFirst("user:recent:".count)
        func items(_ path: String) -> [String] {
            ((serve.request("GET", path)?.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["item"] as? String }
        }
        let popular = items("/v1/popular?k=10")
        XCTAssertEqual(popular.count, 10)
        let item = popular[0]
        let url = "http://127.0.0.1:\(serve.port)/?user=\(user)&item=\(item)"
        let page = try chromium(["--dump-dom"], url: url, home: services.workDir)
        XCTAssertEqual(page.status, 0)
        let dom = page.out
        XCTAssertEqual(shown(dom, list: "popular"), popular, String(dom.prefix(3000)))
        XCTAssertEqual(shown(dom, list: "trending"), items("/v1/popular?k=10&window=trending"))
        let recommended = items("/v1/recommendations?k=10&user_id=\(user)")
        XCTAssertEqual(recommended.count, 10)
        XCTAssertEqual(shown(dom, list: "recommendations"), recommended)
        XCTAssertTrue(dom.contains(#"<span class="reason">co-viewed with "#) || dom.contains(#"<span class="reason">popular in "#), "reasons are shown")
        XCTAssertEqual(shown(dom, list: "similar"), items("/v1/items/\(item)/similar?k=10"))
        XCTAssertFalse(shown(dom, list: "similar").isEmpty)
        XCTAssertTrue(dom.contains(#"<tr data-application="recs">"#), "the pipeline row")
        XCTAssertTrue(dom.range(of: #"<td class="num">[0-9,]+</td><td class="up">up</td>"#, options: .regularExpression) != nil, "its lag and its state")
        XCTAssertTrue(dom.contains("namespace (none)"))

        // The screenshot, for a person to look at.
        let dir = LocalServices.packageRoot.appendingPathComponent(".test-output")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let png = dir.appendingPathComponent("live-page.png")
        try? FileManager.default.removeItem(at: png)
        let shot = try chromium(["--screenshot=\(png.path)", "--window-size=1280,1100", "--hide-scrollbars"], url: url, home: services.workDir)
        XCTAssertEqual(shot.status, 0)
        let size = (try FileManager.default.attributesOfItem(atPath: png.path)[.size] as? Int) ?? 0
        XCTAssertGreaterThan(size, 20_000, "a rendered page, not a blank one")
        print("live page screenshot: \(png.path)")
    }
}
