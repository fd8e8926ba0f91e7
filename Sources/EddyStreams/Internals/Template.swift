/// What a template placeholder or a sink value refers to in a node's output.
enum OutputRef: Equatable, Sendable {
    /// A field of the input record (its id in the extractor's field list).
    case field(Int)
    /// The i-th group-by field of a stateful node.
    case group(Int)
    /// The i-th output of a stateful node, as its operator numbers them; `isNumber`: it
    /// renders as a number (so it can be a zset score).
    case output(Int, isNumber: Bool)

    var isNumber: Bool {
        if case .output(_, let isNumber) = self { return isNumber }
        return false
    }
}

/// A key template such as `user:{user_id}:counts`, parsed once into literal and field parts.
struct Template: Equatable, Sendable {
    enum Part: Equatable, Sendable {
        case literal([UInt8])
        case ref(OutputRef)
    }
    let parts: [Part]

    /// Parses `text`, resolving each `{name}` with `resolve`; throws the message for the
    /// first placeholder that cannot be resolved or a brace that does not close.
    static func parse(_ text: String, resolve: (String) throws(TemplateError) -> OutputRef) throws(TemplateError) -> Template {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            literal += Array(rest[..<open].utf8)
            guard let close = rest[open...].firstIndex(of: "}") else { throw TemplateError("unclosed '{' in template '\(text)'") }
            let name = String(rest[rest.index(after: open)..<close])
            guard !name.isEmpty else { throw TemplateError("empty '{}' in template '\(text)'") }
            if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
            parts.append(.ref(try resolve(name)))
            rest = rest[rest.index(after: close)...]
        }
        if rest.contains("}") { throw TemplateError("unmatched '}' in template '\(text)'") }
        literal += Array(rest.utf8)
        if !literal.isEmpty { parts.append(.literal(literal)) }
        return Template(parts: parts)
    }

    /// Appends the rendered template to `out`, asking `value` to append each referenced value.
    @inline(__always)
    func render(into out: inout [UInt8], _ value: (OutputRef, inout [UInt8]) -> Void) {
        for part in parts {
            switch part {
            case .literal(let bytes): out.append(contentsOf: bytes)
            case .ref(let ref): value(ref, &out)
            }
        }
    }
}

struct TemplateError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
