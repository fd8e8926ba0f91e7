import EddyStreams
import Foundation

/// A config file that cannot be used, pointing at file, line, column and field.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let column: Int?
    /// The field's path, e.g. `nodes[1].aggregate.group_by` (empty for the whole file).
    public let field: String
    public let message: String

    public var description: String {
        let position = [line, column].compactMap { $0 }.map(String.init).joined(separator: ":")
        let location = position.isEmpty ? file : "\(file):\(position)"
        return field.isEmpty ? "\(location): \(message)" : "\(location): field '\(field)': \(message)"
    }
}

/// A config file's text, or a `ConfigError` naming the file.
func readConfigFile(_ path: String) throws -> String {
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw ConfigError(file: path, line: nil, column: nil, field: "", message: "cannot read the file: \(fileSystemReason(error))")
    }
}
