/// Decides, while a changelog partition is read from a checkpoint to its end, which records
/// committed: it releases an attempt's records when a marker names the attempt, and at the
/// end resolves the attempts still unmarked.
///
/// An attempt is unmarked at the end when it aborted, or when it committed and the process
/// stopped before a later transaction could carry its marker. The group's committed
/// position of the task tells them apart: a committed attempt is the last one, and the group
/// is exactly at its end. An aborted attempt that happens to end at the same position read
/// the same input records (for a source task the position is the sum of two offsets, so its
/// source repartition offset must match too) and holds the same values (processing starts
/// from committed state; with two inputs their interleaving may differ, and the later,
/// committed attempt's values are released last), so releasing it too is harmless. Every
/// other unmarked attempt is dropped. Under at-least-once there are no markers and every
/// record is released in order.
///
/// Records waiting for their marker are copied into one byte buffer per attempt (no
/// allocation per record: restore is bound by per-record costs); released records are
/// handed out as buffers valid during the `release` call.
struct ChangelogResolver {
    /// `release(key, value, inputEnd)`.
    typealias Release = (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Int64) throws -> Void

    /// An unmarked attempt's records: keys and values back to back in `bytes`.
    private struct Pending {
        var bytes: [UInt8] = []
        var records: [(keyEnd: Int, valueEnd: Int, inputEnd: Int64)] = []
        /// The last record's source repartition offset (`InBandHeaders.Partial.rekeyedEnd`).
        var rekeyedEnd: Int64 = 0

        mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, inputEnd: Int64, rekeyedEnd: Int64) {
            bytes.append(contentsOf: key)
            let keyEnd = bytes.count
            bytes.append(contentsOf: value)
            records.append((keyEnd, bytes.count, inputEnd))
            self.rekeyedEnd = rekeyedEnd
        }

        func release(_ release: Release) rethrows {
            try bytes.withUnsafeBytes { all in
                var start = 0
                for r in records {
                    try release(UnsafeRawBufferPointer(rebasing: all[start..<r.keyEnd]),
                                UnsafeRawBufferPointer(rebasing: all[r.keyEnd..<r.valueEnd]), r.inputEnd)
                    start = r.valueEnd
                }
            }
        }
    }

    private let usesMarkers: Bool
    private var marked: Set<CommitAttempt> = []
    /// Per life, the last `Marking.through` read: it covers that life's earlier ones.
    private var markedThrough: [UInt64: InBandHeaders.Marking] = [:]
    private var pending: [CommitAttempt: Pending] = [:]
    /// Unmarked attempts in the order their first record appeared.
    private var order: [CommitAttempt] = []
    /// The same per life, so a life's marker looks at that life's pending attempts only
    /// (a restore reads about one marker per commit: scanning `order` for each would cost
    /// markers × attempts).
    private var orderByLife: [UInt64: [CommitAttempt]] = [:]
    private(set) var dropped = 0

    init(usesMarkers: Bool) { self.usesMarkers = usesMarkers }

    mutating func add(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, inputEnd: Int64, rekeyedEnd: Int64 = 0, of attempt: CommitAttempt,
                      release: Release) rethrows {
        if !usesMarkers || marked.contains(attempt) || markedThrough[attempt.life]?.covers(attempt) == true { return try release(key, value, inputEnd) }
        if pending[attempt] == nil {
            order.append(attempt)
            orderByLife[attempt.life, default: []].append(attempt)
        }
        pending[attempt, default: Pending()].append(key: key, value: value, inputEnd: inputEnd, rekeyedEnd: rekeyedEnd)
    }

    mutating func mark(_ attempts: [CommitAttempt], release: Release) rethrows {
        try mark(.attempts(attempts), release: release)
    }

    /// Releases what the marker says committed, attempt by attempt in the order they
    /// appeared (a life's attempts appear in sequence order).
    mutating func mark(_ marking: InBandHeaders.Marking, release: Release) rethrows {
        switch marking {
        case .attempts(let attempts):
            for attempt in attempts where marked.insert(attempt).inserted {
                try pending.removeValue(forKey: attempt)?.release(release)
            }
        case .through(let life, _, _):
            markedThrough[life] = marking
            var waiting: [CommitAttempt] = []
            for attempt in orderByLife[life] ?? [] where pending[attempt] != nil {
                if marking.covers(attempt) { try pending.removeValue(forKey: attempt)!.release(release) } else { waiting.append(attempt) }
            }
            orderByLife[life] = waiting
        }
    }

    /// Releases the unmarked attempts that end at `committedInputOffset` (and, for a source
    /// task, at `committedRekeyedOffset` in its source repartition partition: a position is a
    /// sum of two offsets) and drops the rest; returns the attempts released that way (they
    /// need a marker of their own).
    mutating func finish(committedInputOffset: Int64?, committedRekeyedOffset: Int64 = 0, release: Release) rethrows -> [CommitAttempt] {
        var resolved: [CommitAttempt] = []
        for attempt in order {
            guard let records = pending.removeValue(forKey: attempt), let last = records.records.last else { continue }
            if last.inputEnd == committedInputOffset && records.rekeyedEnd == committedRekeyedOffset {
                try records.release(release)
                resolved.append(attempt)
            } else {
                dropped += records.records.count
            }
        }
        order.removeAll()
        orderByLife.removeAll()
        return resolved
    }
}
