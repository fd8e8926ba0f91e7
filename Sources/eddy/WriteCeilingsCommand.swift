import ArgumentParser
import EddyConfig
import EddyRedis
import EddyState
import EddyStreams
import Foundation

/// The ceilings of Eddy's two write paths, for benchmarks: RocksDB WriteBatch puts (the
/// commit's store write) and pipelined Redis writes (the commit's view write), each alone,
/// with the batch sizes the runtime uses.
struct WriteCeilings: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-ceilings",
        abstract: "Measure RocksDB WriteBatch and pipelined Redis write rates (no Kafka), for benchmarks.")

    @Option(help: "Writes per measurement.") var records = 1_000_000
    @Option(help: "Writes per RocksDB batch and per Redis pipeline.") var batch = 4_096
    @Option(help: "The runtime config naming Redis and the RocksDB memory budget.") var config: String = "configs/local.yaml"
    @Flag(help: "Print the result as one JSON object.") var json = false

    func run() throws {
        let runtime = try RuntimeConfigFile.load(path: config)
        let rocksdb = try rocksDBPutsPerSecond(memoryBudgetMB: runtime.memoryBudgetMB)
        let redis = try redisWritesPerSecond(host: runtime.redisHost, port: runtime.redisPort)
        if json {
            print("{\"records\":\(records),\"batch\":\(batch),\"rocksdb_puts_per_second\":\(rocksdb),\"redis_writes_per_second\":\(redis)}")
        } else {
            print("RocksDB WriteBatch: \(Int(rocksdb)) puts/s; Redis pipelined ZADD: \(Int(redis)) writes/s (\(records) each, batches of \(batch))")
        }
    }

    /// Distinct keys shaped like group keys (a length prefix and an id), 16-byte values.
    private func key(_ i: Int) -> [UInt8] { Array("\u{6}\0\0\0i\(i)".utf8) }

    private func rocksDBPutsPerSecond(memoryBudgetMB: Int) throws -> Double {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-write-ceiling-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = try StateDatabase(path: dir.path, memoryBudgetBytes: memoryBudgetMB << 20)
        defer { database.close() }
        let family = try database.columnFamily("ceiling")
        let keys = (0..<records).map(key)
        let value = [UInt8](repeating: 7, count: 16)
        return try rate { range in
            let writes = StateWriteBatch()
            for i in range { writes.put(family, key: keys[i], value: value) }
            try database.write(writes)
        }
    }

    /// ZADD into a scratch key (deleted afterwards), as the view writer pipelines them.
    private func redisWritesPerSecond(host: String, port: Int) throws -> Double {
        let redis = try RedisConnection(host: host, port: port)
        let scratch = "eddy:write-ceiling:\(UUID().uuidString.prefix(8))"
        defer { _ = try? redis.send("UNLINK", scratch) }
        let commands = (0..<records).map { RedisCommand([Array("ZADD".utf8), Array(scratch.utf8), Array("\(Double($0) / 7)".utf8), Array("i\($0)".utf8)]) }
        return try rate { range in
            let replies = try redis.pipeline(Array(commands[range]))
            if let error = replies.lazy.compactMap(\.firstError).first { throw RedisError("ZADD failed: \(error)") }
        }
    }

    /// Writes per second of `write`, called on consecutive ranges of `batch` indexes.
    private func rate(_ write: (Range<Int>) throws -> Void) throws -> Double {
        let start = Date()
        for first in stride(from: 0, to: records, by: batch) { try write(first..<min(first + batch, records)) }
        return Double(records) / Date().timeIntervalSince(start)
    }
}
