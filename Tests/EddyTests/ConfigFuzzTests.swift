@testable import EddyConfig
@testable import EddyGen
import XCTest

/// Bad config must never crash Eddy: the topology and runtime-config parsers get thousands
/// of mutated copies of the shipped files and random YAML, and each must parse or throw a
/// one-line `ConfigError` naming the file (and the line, where the file has one). A trap
/// ends the test process, so the run fails; the input being parsed is always in
/// `fuzz-current.yaml` in the temporary directory, to reproduce it.
///
/// Seeded (EDDY_FUZZ_SEED overrides the seed, to explore further): every run tries the same
/// cases, so a failure reproduces.
final class ConfigFuzzTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let current = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-current.yaml")
    private static let file = "fuzz.yaml"

    private var rng = SplitMix64(seed: ProcessInfo.processInfo.environment["EDDY_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_201)

    /// Values that broke or could break a parser or what runs after it: numbers at and past
    /// Int64's edges, floats, durations past the limits, empty and null, the wrong YAML
    /// types, anchors, tags, escapes.
    private static let nastyScalars = [
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "99999999999999999999999",
        "1e400", "-1e400", "9e12", "0", "-0", "-1", "0x10", "0o17", ".inf", "-.inf", ".nan", "1.5",
        "9999999999999999d", "9223372036854776s", "36526d", "36525d", "0s", "-5m", "1.5h", "d", "s",
        "''", "\"\"", "' '", "~", "null", "[]", "{}", "[a, b]", "{x: 1}", "[[]]", "true", "no",
        "&anchor x", "*anchor", "*missing", "!!binary AAAA", "!!int x", "\"\\u0000\"", "\"\\uFFFF\"",
        "'{'", "'}'", "\"{user_id\"", "\"{}\"", "\"{user_id}{event_type}\"", "user_id", "count", "rank",
        "recent", "zset", "hash", "string", "off", "exactly_once", "at_least_once", "ü", "😀", "\u{7}",
    ]

    /// The shipped topologies and configs: the mutations' starting points.
    private static func shippedFiles() throws -> [String] {
        let files = try ["Topologies", "configs", "Benchmarks/topologies"].flatMap { dir -> [String] in
            let url = root.appendingPathComponent(dir)
            return try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(".yaml") }.sorted()
                .map { try String(contentsOf: url.appendingPathComponent($0), encoding: .utf8) }
        }
        XCTAssertGreaterThanOrEqual(files.count, 8)
        return files
    }

    /// The ranges of the values written `key: value` (block or flow style).
    private static func values(in text: String) -> [Range<String.Index>] {
        text.matches(of: /: ([^\s,\[\]{}#]+)/).map { $0.output.1.startIndex..<$0.output.1.endIndex }
    }

    /// Systematic where the random mutations are sparse: every value of every shipped file
    /// replaced by every nasty scalar (a `ttl: 24h` gets `9999999999999999d`, for example).
    func testEveryShippedValueReplacedByEveryNastyScalar() throws {
        var cases = 0
        for text in try Self.shippedFiles() {
            for value in Self.values(in: text) {
                for scalar in Self.nastyScalars {
                    _ = check(text.replacingCharacters(in: value, with: scalar))
                    cases += 1
                }
            }
        }
        XCTAssertGreaterThan(cases, 5_000)
    }

    func testMutatedShippedFilesNeverCrashTheParsers() throws {
        let bases = try Self.shippedFiles()
        var parsed = 0, rejected = 0
        for _ in 0..<3_000 {
            var text = bases[rng.below(bases.count)]
            for _ in 0..<(1 + rng.below(3)) { text = mutate(text) }
            let outcome = check(text)
            parsed += outcome.parsed
            rejected += outcome.rejected
        }
        // Mutations must reach both outcomes, or the test checks less than it seems to.
        XCTAssertGreaterThan(parsed, 100)
        XCTAssertGreaterThan(rejected, 500)
    }

    func testRandomYAMLNeverCrashesTheParsers() {
        for _ in 0..<3_000 {
            var text = ""
            emit(randomNode(depth: 0), indent: 0, into: &text)
            _ = check(text)
        }
        // Deep nesting, flow and block, and a file of random bytes.
        for depth in [100, 1_000, 10_000] {
            _ = check("application: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n")
            _ = check("nodes:\n" + (0..<min(depth, 1_000)).map { String(repeating: "  ", count: $0) + "- a:" }.joined(separator: "\n") + "\n")
            _ = check(String(repeating: "{a: ", count: depth) + "x" + String(repeating: "}", count: depth))
        }
        for _ in 0..<500 {
            _ = check(String(decoding: (0..<rng.below(200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, as: UTF8.self))
        }
    }

    /// Parses `text` as a topology and as a runtime config; returns how many parsed and how
    /// many were rejected, failing on anything but a well-formed `ConfigError`.
    private func check(_ text: String) -> (parsed: Int, rejected: Int) {
        try? text.write(to: Self.current, atomically: false, encoding: .utf8)
        var outcome = (parsed: 0, rejected: 0)
        for parse in [{ _ = try TopologyFile.parse($0, file: Self.file) }, { _ = try RuntimeConfigFile.parse($0, file: Self.file) }] as [(String) throws -> Void] {
            do {
                try parse(text)
                outcome.parsed += 1
            } catch let error as ConfigError {
                outcome.rejected += 1
                let d = error.description
                XCTAssertEqual(error.file, Self.file, d)
                XCTAssertTrue(d.hasPrefix(Self.file + (error.line.map { ":\($0):" } ?? ": ")), d)
                XCTAssertFalse(d.contains("\n"), "not one line: \(d)\ninput:\n\(text.prefix(500))")
                if error.line == nil { XCTAssertEqual(error.message, "the file is empty", "no line for: \(d)\ninput:\n\(text.prefix(500))") }
            } catch {
                XCTFail("not a ConfigError: \(error)\ninput:\n\(text.prefix(500))")
            }
        }
        return outcome
    }

    private func mutate(_ text: String) -> String {
        var lines = text.components(separatedBy: "\n")
        let i = rng.below(lines.count), j = rng.below(lines.count)
        switch rng.below(9) {
        case 0: lines.remove(at: i)
        case 1: lines.insert(lines[i], at: j)
        case 2: lines.swapAt(i, j)
        case 3, 4: return replace(oneOf: text.ranges(of: /[^\s,\[\]{}:#]+/), in: text)
        case 5: return replace(oneOf: Self.values(in: text), in: text)
        case 6: lines[i] = rng.below(2) == 0 ? "  " + lines[i] : String(lines[i].drop { $0 == " " })
        case 7:
            var bytes = Array(text.utf8)
            let at = rng.below(bytes.count + 1)
            bytes.insert(contentsOf: (0..<(1 + rng.below(8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            return String(decoding: bytes, as: UTF8.self)
        default: return String(text.prefix(rng.below(text.count + 1)))
        }
        return lines.joined(separator: "\n")
    }

    /// Replaces one of `words` (any word, or the values after `key: `) with a nasty scalar
    /// or deep nesting.
    private func replace(oneOf words: [Range<String.Index>], in text: String) -> String {
        guard !words.isEmpty else { return text }
        let word = words[rng.below(words.count)]
        let depth = 1 + rng.below(200)
        let replacement = rng.below(10) == 0
            ? String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
            : Self.nastyScalars[rng.below(Self.nastyScalars.count)]
        return text.replacingCharacters(in: word, with: replacement)
    }

    /// Random documents built from the files' own vocabulary, so they reach deep paths.
    private indirect enum Tree {
        case scalar(String)
        case list([Tree])
        case map([(String, Tree)])
    }

    private static let keys = ["application", "source", "nodes", "topic", "key", "timestamp", "required", "name", "input",
                               "filter", "project", "aggregate", "recent", "decay", "to_redis", "group_by", "sum", "weights",
                               "field", "values", "size", "half_life", "type", "member", "score", "value", "ttl", "equals",
                               "in", "not_in", "exists", "kafka", "redis", "state", "runtime", "metrics", "processing",
                               "bootstrap_servers", "port", "dir", "memory_mb", "threads", "properties", "guarantee"]

    private func randomNode(depth: Int) -> Tree {
        switch depth > 5 ? 0 : rng.below(3) {
        case 0: return .scalar(Self.nastyScalars[rng.below(Self.nastyScalars.count)])
        case 1: return .list((0..<rng.below(4)).map { _ in randomNode(depth: depth + 1) })
        default: return .map((0..<rng.below(5)).map { _ in (Self.keys[rng.below(Self.keys.count)], randomNode(depth: depth + 1)) })
        }
    }

    private func emit(_ tree: Tree, indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        switch tree {
        case .scalar(let s): out += pad + s + "\n"
        case .list(let items):
            if items.isEmpty { out += pad + "[]\n" }
            for item in items {
                out += pad + "-\n"
                emit(item, indent: indent + 2, into: &out)
            }
        case .map(let entries):
            if entries.isEmpty { out += pad + "{}\n" }
            for (key, value) in entries {
                out += pad + key + ":\n"
                emit(value, indent: indent + 2, into: &out)
            }
        }
    }
}
