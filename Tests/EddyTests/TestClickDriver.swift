import EddyConfig
import EddyStreams
import EddyTestSupport

extension TopologyTestDriver {
    /// A driver on two partitions that has processed `clicks` (each to its partition),
    /// committing after every `commitEvery` and, after click `restartAt`, committing and
    /// restarting; then a last commit.
    static func run(_ topologyFile: String, _ clicks: [TestClick], commitEvery: Int, restartAt: Int? = nil) throws -> TopologyTestDriver {
        let driver = try TopologyTestDriver(try TopologyFile.parse(topologyFile, file: "t.yaml"), partitions: 2)
        for (i, e) in clicks.enumerated() {
            try driver.pipe(e.json, partition: e.partition)
            if i % commitEvery == commitEvery - 1 { try driver.commit() }
            if i == restartAt { try driver.commit(); try driver.restart() }
        }
        try driver.commit()
        return driver
    }
}
