import Logging

/// swift-log's `StreamLogHandler` (same lines on the same stream) with its metadata
/// formatted when a line is written rather than whenever the metadata changes.
///
/// Hummingbird gives every request's logger a request id; `StreamLogHandler` formats its
/// whole metadata on each such change, though nearly no request logs a line: 2% of
/// `eddy serve`'s CPU at 12,000 single-event posts/s (perf).
public struct LazyMetadataLogHandler: LogHandler {
    private let stream: StreamLogHandler
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level

    public init(_ stream: StreamLogHandler) {
        self.stream = stream
        metadataProvider = stream.metadataProvider
        logLevel = stream.logLevel
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = stream
        line.metadataProvider = metadataProvider
        line.logLevel = logLevel
        line.metadata = metadata  // formatted here, once per line written
        line.log(event: event)
    }
}
