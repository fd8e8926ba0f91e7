/// Route patterns compiled once, for the middleware that names a request's route (the
/// metrics label, the 405 check): `{name}` segments match any one segment
/// (`/v1/users/{id}/features`).
///
/// Matching runs twice per request. Splitting every pattern and the path on each call cost
/// 8% of serve's CPU at 12,000 single-event posts/s (perf); a path without parameters is
/// now one dictionary lookup, and only the few parametric patterns are compared segment by
/// segment.
struct RouteTable: Sendable {
    /// Patterns without `{name}` segments, by themselves.
    private let exact: [String: String]
    /// The others, split; nil segments match any one segment.
    private let parametric: [(pattern: String, segments: [Substring?])]

    init(_ patterns: some Sequence<String>) {
        var exact: [String: String] = [:]
        var parametric: [(String, [Substring?])] = []
        for pattern in patterns {
            let segments = pattern.split(separator: "/", omittingEmptySubsequences: false)
            if segments.contains(where: { $0.hasPrefix("{") }) {
                parametric.append((pattern, segments.map { $0.hasPrefix("{") ? nil : $0 }))
            } else {
                exact[pattern] = pattern
            }
        }
        self.exact = exact
        self.parametric = parametric
    }

    /// The pattern `path` matches, nil when none does. A pattern without parameters wins
    /// over a parametric one.
    func pattern(of path: String) -> String? {
        if let pattern = exact[path] { return pattern }
        guard !parametric.isEmpty else { return nil }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return parametric.first { _, parts in
            parts.count == segments.count && zip(parts, segments).allSatisfy { part, segment in part.map { $0 == segment } ?? true }
        }?.pattern
    }
}
