import ArgumentParser
import EddyConfig

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a topology file; errors name file, line and field.")

    @Argument(help: "The topology file.") var file: String

    func run() throws {
        let topology = try TopologyFile.load(path: file)
        print("\(file): ok (application \(topology.application), \(topology.nodes.count) node(s))")
    }
}

struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a topology's graph as text, Mermaid or Graphviz DOT.")

    @Argument(help: "The topology file.") var file: String
    @Option(help: "text, mermaid or dot.") var format: String = "text"

    func run() throws {
        guard let format = Topology.DescriptionFormat(rawValue: format) else {
            throw ValidationError("unknown format '\(format)' (expected text, mermaid or dot)")
        }
        print(try TopologyFile.load(path: file).describe(format))
    }
}

import EddyStreams
