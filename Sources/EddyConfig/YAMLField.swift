import EddyStreams
import Yams

typealias PathComponent = TopologyError.PathComponent

/// A node of a parsed YAML file with the path that led to it, so every accessor can fail
/// with file, line and field.
struct YAMLField {
    let file: String
    let node: Node
    let path: [PathComponent]
    /// Where to point at: the key's position for mapping values, else the node's.
    let mark: Mark?

    static func load(_ text: String, file: String) throws -> YAMLField {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxError(error, in: text, file: file)
        }
        guard let node else { throw ConfigError(file: file, line: nil, column: nil, field: "", message: "the file is empty") }
        return YAMLField(file: file, node: node, path: [], mark: node.mark)
    }

    /// A YAML error as a one-line `ConfigError` at its line and column (Yams' own
    /// descriptions span several lines and quote the file).
    private static func syntaxError(_ error: YamlError, in text: String, file: String) -> ConfigError {
        let position: (line: Int, column: Int)?
        let problem: String
        switch error {
        case .scanner(_, let p, let mark, _), .parser(_, let p, let mark, _), .composer(_, let p, let mark, _):
            (position, problem) = ((mark.line, mark.column), p)
        case .duplicatedKeysInMapping(let duplicates, let context):
            (position, problem) = ((context.mark.line, context.mark.column), "duplicated key(s) \(duplicates.sorted().joined(separator: ", "))")
        case .reader(let p, let offset, _, _):
            // The reader (bad bytes, e.g. control characters) reports a byte offset.
            let before = offset.map { text.utf8.prefix($0) }
            position = before.map { bytes in
                let line = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                return (line.count, (line.last?.count ?? 0) + 1)
            }
            problem = p
        default:
            (position, problem) = (nil, String(describing: error).split(separator: "\n").first.map(String.init) ?? "unknown error")
        }
        return ConfigError(file: file, line: position?.line, column: position?.column, field: "", message: "not valid YAML: \(problem)")
    }

    var fieldName: String { TopologyError(path, "").field }

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: mark?.line, column: mark?.column, field: fieldName, message: message)
    }

    /// The entries of a mapping; rejects keys not in `allowed` (typos must not pass silently).
    func mapping(allowed: [String]) throws -> [String: YAMLField] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping (key: value lines)") }
        var fields: [String: YAMLField] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw error("keys must be plain names") }
            let at = YAMLField(file: file, node: value, path: path + [.key(name)], mark: key.mark)
            guard allowed.contains(name) else {
                throw at.error("unknown field '\(name)' (expected one of: \(allowed.joined(separator: ", ")))")
            }
            if fields[name] != nil { throw at.error("'\(name)' appears twice") }
            fields[name] = at
        }
        return fields
    }

    func sequence() throws -> [YAMLField] {
        guard case .sequence(let seq) = node else { throw error("expected a list") }
        return seq.enumerated().map { YAMLField(file: file, node: $1, path: path + [.index($0)], mark: $1.mark) }
    }

    func string() throws -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a single value, not a list or mapping") }
        return scalar.string
    }

    func int() throws -> Int {
        guard let value = Int(try string()) else { throw error("expected a whole number, got '\(try string())'") }
        return value
    }

    func number() throws -> Double {
        guard let value = Double(try string()), value.isFinite else { throw error("expected a number, got '\(try string())'") }
        return value
    }

    func positiveInt(atLeast floor: Int = 1, atMost limit: Int = .max) throws -> Int {
        let value = try int()
        if value <= 0 { throw error("must be positive, got \(value)") }
        if value < floor { throw error("must be at least \(floor), got \(value)") }
        if value > limit { throw error("must be at most \(limit), got \(value)") }
        return value
    }

    /// A value that must say something: empty or blank text is an error, not a default.
    func nonEmptyString() throws -> String {
        let value = try string()
        if value.allSatisfy(\.isWhitespace) { throw error("must not be empty") }
        return value
    }

    func bool() throws -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw error("expected true or false, got '\(other)'")
        }
    }

    /// A list of values; a single value counts as a list of one.
    func strings() throws -> [String] {
        if case .scalar = node { return [try string()] }
        return try sequence().map { try $0.string() }
    }

    /// A duration in seconds: `90`, `90s`, `30m`, `24h`, `7d`, at most
    /// `ConfigLimits.maxDurationSeconds`. The unit multiplication is checked: `9999999999999999d`
    /// must be an error, not an overflow trap.
    func durationSeconds() throws -> Int {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var number = Substring(text)
        var unit = 1
        if let last = text.last, let u = units[last] {
            unit = u
            number = text.dropLast()
        }
        guard let n = Int(number), n > 0 else { throw error("expected a positive duration like 90s, 30m, 24h or 7d, got '\(text)'") }
        let (seconds, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, seconds <= ConfigLimits.maxDurationSeconds else {
            throw error("'\(text)' is longer than the longest duration allowed, 100 years (\(ConfigLimits.maxDurationSeconds / 86_400)d)")
        }
        return seconds
    }

    /// A duration in milliseconds: `500ms`, `90s`, `30m`, `24h`, `7d`, or a plain number of
    /// seconds (`90`), at most `ConfigLimits.maxDurationSeconds`. Must be positive unless
    /// `allowZero` (then `0`, `0s`, `0ms` are accepted). Checked like `durationSeconds`.
    func durationMilliseconds(allowZero: Bool = false) throws -> Int64 {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(suffix: String, ms: Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        var number = Substring(text)
        var unit: Int64 = 1000
        // "ms" before "s" and "m": the first matching suffix wins.
        if let u = units.first(where: { text.hasSuffix($0.suffix) }) {
            unit = u.ms
            number = text.dropLast(u.suffix.count)
        }
        guard let n = Int64(number), allowZero ? n >= 0 : n > 0 else {
            throw error(allowZero ? "expected a duration like 0s, 500ms, 90s, 30m, 24h or 7d, got '\(text)'"
                                  : "expected a positive duration like 500ms, 90s, 30m, 24h or 7d, got '\(text)'")
        }
        let (ms, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, ms <= Int64(ConfigLimits.maxDurationSeconds) * 1000 else {
            throw error("'\(text)' is longer than the longest duration allowed, 100 years (\(ConfigLimits.maxDurationSeconds / 86_400)d)")
        }
        return ms
    }

    /// The node at `path` below this one, or the deepest existing ancestor (for errors
    /// raised after parsing, such as a topology's validation).
    func deepest(_ target: [PathComponent]) -> YAMLField {
        var current = self
        for component in target {
            switch (component, current.node) {
            case (.key(let k), .mapping(let m)):
                guard let (key, value) = m.first(where: { $0.key.scalar?.string == k }) else { return current }
                current = YAMLField(file: file, node: value, path: current.path + [component], mark: key.mark)
            case (.index(let i), .sequence(let s)) where i < s.count:
                current = YAMLField(file: file, node: s[i], path: current.path + [component], mark: s[i].mark)
            default:
                return current
            }
        }
        return current
    }
}

import Foundation
