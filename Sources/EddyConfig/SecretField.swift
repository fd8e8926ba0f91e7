import Foundation

/// A secret in a config file is named by where it lives, never written there:
/// `{env: NAME}` (an environment variable) or `{file: PATH}` (the file's contents, one
/// trailing newline dropped, e.g. a mounted Kubernetes or Docker secret). Errors name the
/// field and the variable or file, never the value.
extension YAMLField {
    func secret() throws -> String {
        guard case .mapping = node else {
            throw error("a secret is given as {env: NAME} or {file: PATH}, not written in the config file")
        }
        let source = try mapping(allowed: ["env", "file"])
        switch (source["env"], source["file"]) {
        case (let env?, nil):
            let name = try env.nonEmptyString()
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw env.error("environment variable \(name) is not set")
            }
            return value
        case (nil, let file?):
            let path = try file.nonEmptyString()
            guard let data = FileManager.default.contents(atPath: path), var value = String(data: data, encoding: .utf8) else {
                throw file.error("cannot read the secret file \(path)")
            }
            if value.hasSuffix("\n") { value.removeLast() }
            guard !value.isEmpty else { throw file.error("the secret file \(path) is empty") }
            return value
        default:
            throw error("give exactly one of env or file")
        }
    }
}
