import EddyKafka
import Foundation

/// Writes generated events to a JSONL file and/or a Kafka topic (keyed by user id, or
/// without keys as a console producer sends).
public final class ClickstreamWriter {
    private var file: FileHandle?
    private var fileBuffer: [UInt8] = []
    private let producer: KafkaProducer?
    private let topic: String?
    private let keyed: Bool

    /// Creates `topic` with `partitions` if it does not exist.
    public init(outputPath: String?, topic: String?, partitions: Int, kafka: KafkaConfig?, keyed: Bool = true) throws {
        self.keyed = keyed
        if let outputPath {
            guard FileManager.default.createFile(atPath: outputPath, contents: nil),
                  let handle = FileHandle(forWritingAtPath: outputPath) else {
                throw GeneratorError("cannot create \(outputPath)")
            }
            file = handle
        }
        self.topic = topic
        if let topic, let kafka {
            producer = try BulkTopicProducer.make(topic: topic, partitions: partitions,
                                                  configs: ["cleanup.policy": "delete", "retention.ms": "-1"], kafka: kafka)
        } else {
            producer = nil
        }
    }

    public func write(_ event: ClickstreamGenerator.Event, json: [UInt8]) throws {
        if file != nil {
            fileBuffer.append(contentsOf: json)
            fileBuffer.append(UInt8(ascii: "\n"))
            if fileBuffer.count >= 1 << 20 { flushFile() }
        }
        if let producer, let topic {
            try producer.send(topic: topic, key: keyed ? Array(event.userKey.utf8) : nil, value: json)
        }
    }

    private func flushFile() {
        file?.write(Data(fileBuffer))
        fileBuffer.removeAll(keepingCapacity: true)
    }

    /// Writes out buffers and waits for every record to be acknowledged.
    public func finish() throws {
        flushFile()
        try file?.close()
        file = nil
        try producer?.flush(timeoutMs: 120_000)
    }
}

public struct GeneratorError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
