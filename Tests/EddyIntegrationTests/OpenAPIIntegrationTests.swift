import Foundation
import XCTest

/// `GET /openapi.json` describes exactly the routes `eddy serve` answers, and schemathesis
/// (PyPI, installed by scripts/setup) fuzzes every operation against a serve over real
/// state: no 5xx, every answer's status, content type and body as documented, valid
/// requests accepted, invalid ones refused, 405 for methods a route does not take.
final class OpenAPIIntegrationTests: XCTestCase {
    func testTheDocumentNamesEveryRouteAndSchemathesisFindsNothing() throws {
        continueAfterFailure = false
        let st = LocalServices.packageRoot.appendingPathComponent("tools/schemathesis/bin/st").path
        guard FileManager.default.isExecutableFile(atPath: st) else { return XCTFail("schemathesis is not installed at \(st): run scripts/setup") }
        let services = try LocalServices()
        defer { services.stop() }
        let (_, recs, _) = try services.recsState(name: "openapi", topic: "clicks-openapi", events: 3000, users: 100, items: 200, categories: 6, seed: 4)
        let serve = try ServeProcess(config: try services.writeServeConfig(name: "serve", topology: recs))
        defer { _ = try? serve.stop() }

        let document = try XCTUnwrap(serve.request("GET", "/openapi.json"))
        XCTAssertEqual(document.status, 200)
        XCTAssertEqual(document.headers["content-type"], "application/json")
        let paths = try XCTUnwrap(document.json["paths"] as? [String: [String: Any]])
        let expected: [String: String] = [
            "/healthz": "get", "/readyz": "get", "/metrics": "get", "/openapi.json": "get", "/v1/events": "post", "/v1/events:batch": "post",
            "/v1/users/{id}/features": "get", "/v1/recommendations": "get", "/v1/items/{id}/similar": "get", "/v1/popular": "get",
            "/v1/sessions/{id}/features": "get", "/": "get", "/v1/pipeline": "get",
        ]
        XCTAssertEqual(Set(paths.keys), Set(expected.keys))
        for (path, method) in expected { XCTAssertEqual(paths[path].map { Array($0.keys) }, [method], path) }
        // Each documented route answers (not the router's 404), with its parameters filled in.
        let event = #"{"user_id":"u1","event_type":"view","item_id":"i1","category":"c1","ts":1767225600000}"#
        for (path, method) in expected {
            let concrete = path.replacingOccurrences(of: "{id}", with: "u1") + (path == "/v1/recommendations" ? "?user_id=u1" : "")
            let body = path.hasPrefix("/v1/events") ? Array((path.hasSuffix("batch") ? "[\(event)]" : event).utf8) : []
            let answer = try XCTUnwrap(serve.request(method.uppercased(), concrete, body: body))
            XCTAssertTrue([200, 202].contains(answer.status), "\(method) \(concrete): \(answer.status) \(answer.body.prefix(300))")
        }

        let fuzz = Process()
        fuzz.executableURL = URL(fileURLWithPath: st)
        let settings = LocalServices.packageRoot.appendingPathComponent("Tests/EddyIntegrationTests/schemathesis.toml").path
        fuzz.arguments = ["--config-file", settings, "run", "http://127.0.0.1:\(serve.port)/openapi.json", "--max-examples", "40", "--seed", "7", "--no-shrink",
                          "--request-timeout", "10", "--output-truncate", "true"]  // not --max-time: it makes fuzzing run the whole time
        let output = services.workDir.appendingPathComponent("schemathesis.txt")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        fuzz.standardOutput = handle
        fuzz.standardError = handle
        fuzz.environment = ["PATH": "/usr/bin:/bin", "HOME": services.workDir.path, "NO_COLOR": "1"]
        try fuzz.run()
        fuzz.waitUntilExit()
        try handle.close()
        let report = try String(contentsOf: output, encoding: .utf8)
        // The failures' headings and first lines, each cut short (a failing case may carry a megabyte of body).
        let summary = report.split(separator: "\n").filter { $0.hasPrefix("___") || $0.hasPrefix("- ST") || $0.contains("failures") || $0.contains("❌") }
            .map { String($0.prefix(240)) }.joined(separator: "\n")
        XCTAssertEqual(fuzz.terminationStatus, 0, "schemathesis found failures:\n\(summary)")
        XCTAssertTrue(report.contains("generated"), String(report.suffix(2000)))
        XCTAssertEqual(serve.metric("eddy_http_requests_total", [#"status="5"#]) - serve.metric("eddy_http_requests_total", [#"status="503""#]), 0, "no 5xx but 503")
        XCTAssertTrue(serve.running.isRunning)
        XCTAssertEqual(try serve.stop(), 0)
    }
}
