/// Decides, while a changelog partition is read from a checkpoint to its end, which records
/// committed: it releases an attempt's records when a marker names the attempt, and at the
/// end resolves the attempts still unmarked.
///
/// An attempt is unmarked at the end when it aborted, or when it committed and the process
/// stopped before a later transaction could carry its marker. The group's committed offset
/// of the task's input partition tells them apart: a committed attempt is the last one, and
/// the group is exactly at its input end. An aborted attempt that happens to end at the
/// same input offset holds the same values (processing is deterministic and starts from
/// committed state), so releasing it too is harmless. Every other unmarked attempt is
/// dropped. Under at-least-once there are no markers and every record is released in order.
struct ChangelogResolver {
    struct Record {
        let key: [UInt8]
        let value: [UInt8]
        let inputEnd: Int64
    }

    private let usesMarkers: Bool
    private var marked: Set<CommitAttempt> = []
    private var pending: [CommitAttempt: [Record]] = [:]
    /// Unmarked attempts in the order their first record appeared.
    private var order: [CommitAttempt] = []
    private(set) var dropped = 0

    init(usesMarkers: Bool) { self.usesMarkers = usesMarkers }

    mutating func add(_ record: Record, of attempt: CommitAttempt, release: (Record) throws -> Void) rethrows {
        if !usesMarkers || marked.contains(attempt) { return try release(record) }
        if pending[attempt] == nil { order.append(attempt) }
        pending[attempt, default: []].append(record)
    }

    mutating func mark(_ attempts: [CommitAttempt], release: (Record) throws -> Void) rethrows {
        for attempt in attempts where marked.insert(attempt).inserted {
            if let records = pending.removeValue(forKey: attempt) { try records.forEach(release) }
        }
    }

    /// Releases the unmarked attempts that end at `committedInputOffset` and drops the
    /// rest; returns the attempts released that way (they need a marker of their own).
    mutating func finish(committedInputOffset: Int64?, release: (Record) throws -> Void) rethrows -> [CommitAttempt] {
        var resolved: [CommitAttempt] = []
        for attempt in order {
            guard let records = pending.removeValue(forKey: attempt), let last = records.last else { continue }
            if last.inputEnd == committedInputOffset {
                try records.forEach(release)
                resolved.append(attempt)
            } else {
                dropped += records.count
            }
        }
        order.removeAll()
        return resolved
    }
}
