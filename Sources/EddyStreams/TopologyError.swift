/// A topology that cannot run, with the path of the offending field (for example
/// `nodes[2].aggregate.group_by`) so a config loader can point at its file and line.
public struct TopologyError: Error, CustomStringConvertible, Sendable {
    public enum PathComponent: Sendable, Equatable, CustomStringConvertible {
        case key(String)
        case index(Int)
        public var description: String {
            switch self {
            case .key(let k): return ".\(k)"
            case .index(let i): return "[\(i)]"
            }
        }
    }

    public let path: [PathComponent]
    public let message: String

    public init(_ path: [PathComponent], _ message: String) {
        self.path = path
        self.message = message
    }

    public var field: String {
        String(path.map(\.description).joined().drop(while: { $0 == Character(".") }))
    }

    public var description: String { path.isEmpty ? message : "field '\(field)': \(message)" }
}
