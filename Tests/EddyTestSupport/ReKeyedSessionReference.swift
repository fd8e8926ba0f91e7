/// Session windows after a re-key, written out plainly: records from several source
/// partitions, each partition in event-time order, re-keyed by their session key to the
/// downstream partition `repartitionPartition` gives. No record is behind the stream time
/// of the source partition that re-keys it, so none is late, and a key's sessions are
/// those of its records in any order. A downstream task's stream time is the time every
/// source partition has reached (the least of their largest event times): the sessions
/// closed are those whose end + gap + grace it has passed, the rest are open.
public struct ReKeyedSessionReference {
    private let gapMs: Int64, graceMs: Int64
    private var tasks: [SessionReference]
    private var reached: [Int64]
    private var lastTime = Int64.min

    public init(sourcePartitions: Int, downstreamPartitions: Int, gapMs: Int64, graceMs: Int64) {
        self.gapMs = gapMs
        self.graceMs = graceMs
        tasks = (0..<downstreamPartitions).map { _ in SessionReference(gapMs: gapMs, graceMs: graceMs) }
        reached = Array(repeating: .min, count: sourcePartitions)
    }

    /// Takes the events in event-time order (the whole stream's, so that each downstream
    /// task's `SessionReference` sees its records in order too).
    public mutating func add(_ e: RefEvent, sourcePartition: Int) {
        precondition(e.time >= lastTime, "events in event-time order")
        lastTime = e.time
        reached[sourcePartition] = max(reached[sourcePartition], e.time)
        tasks[repartitionPartition(of: [e.key], partitions: tasks.count)].add(e)
    }

    /// The time every source partition has reached (`Int64.min` until each has an event).
    public var watermark: Int64 { reached.min()! }
    public var late: [Int] { tasks.flatMap(\.late) }
    private var sessions: [RefSession] { tasks.flatMap { $0.closed + $0.open } }
    public var closed: [RefSession] { sessions.filter { $0.end + gapMs + graceMs < watermark } }
    public var open: [RefSession] { sessions.filter { $0.end + gapMs + graceMs >= watermark } }
}
