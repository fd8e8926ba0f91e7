/// One commit attempt of one producer life: the records Eddy writes to its internal topics
/// between two commits, which commit or abort together. A life is one transactional
/// producer's lifetime (a random id, so lives never collide); `sequence` counts its
/// attempts.
struct CommitAttempt: Hashable, Sendable {
    let life: UInt64
    let sequence: UInt64
}

/// The in-band headers of Eddy's internal-topic records (docs/exactly-once.md §2). Some brokers
/// (Tansu 0.6.0) deliver records of aborted transactions to read_committed readers, so a
/// reader decides what is committed from these, not from the broker:
///
/// - every data record carries `eddy.attempt`: its attempt and the input offset the task had
///   reached (24 bytes, little-endian: life, sequence, input end);
/// - a marker record carries `eddy.marker`: attempts known to have committed (16 bytes
///   each), or on changelogs every attempt of its life up to a sequence but the aborted
///   ones (`Marking.through`, keyed by the life so it compacts). The marker for attempt N
///   is written in a later transaction, after N's commit returned, so even a marker that
///   is itself in an aborted transaction tells the truth;
/// - a repartition record carries `eddy.partial` instead: its attempt, the upstream
///   partition, the upstream input range its records cover, and the upstream task's stream
///   time at the commit (48 bytes: life, sequence, upstream partition, start, end, stream
///   time; 40-byte headers of earlier versions read with no stream time);
/// - a resolution record carries `eddy.resolve`: a task's new owner tells the repartition
///   partitions where the group stands on the upstream partition (16 bytes: partition,
///   committed offset or -1), which settles the attempts of earlier owners left unmarked.
enum InBandHeaders {
    static let attempt = "eddy.attempt"
    static let marker = "eddy.marker"
    static let partial = "eddy.partial"
    static let resolution = "eddy.resolve"

    struct Partial: Equatable {
        let attempt: CommitAttempt
        let upstream: Int32
        let start: Int64
        let end: Int64
        /// The upstream task's event time when it committed the attempt: what the
        /// downstream task's stream time is made of (`RepartitionIntake.watermark`).
        let streamTime: Int64
        /// A source task's offset in its source repartition partition at `end` (0: none):
        /// two attempts with the same `end` (a sum of two offsets) differ here when they
        /// read their two inputs in different proportions.
        var rekeyedEnd: Int64 = 0
    }

    static func encode(_ p: Partial) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(48)
        append(p.attempt.life, to: &out)
        append(p.attempt.sequence, to: &out)
        append(UInt64(UInt32(bitPattern: p.upstream)), to: &out)
        append(UInt64(bitPattern: p.start), to: &out)
        append(UInt64(bitPattern: p.end), to: &out)
        append(UInt64(bitPattern: p.streamTime), to: &out)
        if p.rekeyedEnd != 0 { append(UInt64(bitPattern: p.rekeyedEnd), to: &out) }
        return out
    }

    static func decodePartial(_ b: [UInt8]) -> Partial? {
        guard b.count == 40 || b.count == 48 || b.count == 56 else { return nil }
        return Partial(attempt: CommitAttempt(life: read(b, 0), sequence: read(b, 8)), upstream: Int32(truncatingIfNeeded: read(b, 16)),
                       start: Int64(bitPattern: read(b, 24)), end: Int64(bitPattern: read(b, 32)),
                       streamTime: b.count >= 48 ? Int64(bitPattern: read(b, 40)) : .min,
                       rekeyedEnd: b.count == 56 ? Int64(bitPattern: read(b, 48)) : 0)
    }

    /// A resolution: where the group stands on an upstream task's input (its position and,
    /// for a source task, its source repartition offset).
    static func encodeResolution(upstream: Int32, committed: Int64, rekeyedCommitted: Int64 = 0) -> [UInt8] {
        var out: [UInt8] = []
        append(UInt64(UInt32(bitPattern: upstream)), to: &out)
        append(UInt64(bitPattern: committed), to: &out)
        if rekeyedCommitted != 0 { append(UInt64(bitPattern: rekeyedCommitted), to: &out) }
        return out
    }

    static func decodeResolution(_ b: [UInt8]) -> (upstream: Int32, committed: Int64, rekeyedCommitted: Int64)? {
        guard b.count == 16 || b.count == 24 else { return nil }
        return (Int32(truncatingIfNeeded: read(b, 0)), Int64(bitPattern: read(b, 8)), b.count == 24 ? Int64(bitPattern: read(b, 16)) : 0)
    }

    /// A changelog record's header: its attempt and the task's position after it (and, for
    /// a source task, its source repartition offset: `Partial.rekeyedEnd`).
    static func encode(_ attempt: CommitAttempt, inputEnd: Int64, rekeyedEnd: Int64 = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        append(attempt.life, to: &out)
        append(attempt.sequence, to: &out)
        append(UInt64(bitPattern: inputEnd), to: &out)
        if rekeyedEnd != 0 { append(UInt64(bitPattern: rekeyedEnd), to: &out) }
        return out
    }

    static func decodeAttempt(_ bytes: [UInt8]) -> (attempt: CommitAttempt, inputEnd: Int64, rekeyedEnd: Int64)? {
        guard bytes.count == 24 || bytes.count == 32 else { return nil }
        return (CommitAttempt(life: read(bytes, 0), sequence: read(bytes, 8)), Int64(bitPattern: read(bytes, 16)),
                bytes.count == 32 ? Int64(bitPattern: read(bytes, 24)) : 0)
    }

    static func encode(marking attempts: [CommitAttempt]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 * attempts.count)
        for a in attempts {
            append(a.life, to: &out)
            append(a.sequence, to: &out)
        }
        return out
    }

    static func decodeMarker(_ bytes: [UInt8]) -> [CommitAttempt]? {
        guard bytes.count % 16 == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: 16).map { CommitAttempt(life: read(bytes, $0), sequence: read(bytes, $0 + 8)) }
    }

    /// What a marker says committed: the attempts it names, or — on changelogs, where
    /// markers must compact — every attempt of one life up to a sequence except the aborted
    /// ones it lists (each such marker of a life includes what its earlier ones said, so the
    /// one compaction keeps, the last, is enough).
    enum Marking: Equatable {
        case attempts([CommitAttempt])
        /// `aborted`: runs of aborted sequences (a broker outage aborts consecutive attempts:
        /// one run, not one entry per attempt).
        case through(life: UInt64, sequence: UInt64, aborted: [ClosedRange<UInt64>])

        func covers(_ a: CommitAttempt) -> Bool {
            switch self {
            case .attempts(let list): return list.contains(a)
            case .through(let life, let sequence, let aborted):
                return a.life == life && a.sequence <= sequence && !aborted.contains { $0.contains(a.sequence) }
            }
        }
    }

    /// `.through` is 0xC1, life, sequence, the count of aborted runs (4 bytes), each run's
    /// first and last sequence: 21 + 16k bytes, never a multiple of 16 like a list of attempts.
    static func encode(_ marking: Marking) -> [UInt8] {
        switch marking {
        case .attempts(let list): return encode(marking: list)
        case .through(let life, let sequence, let aborted):
            var out: [UInt8] = [0xC1]
            append(life, to: &out)
            append(sequence, to: &out)
            withUnsafeBytes(of: UInt32(aborted.count).littleEndian) { out.append(contentsOf: $0) }
            for run in aborted {
                append(run.lowerBound, to: &out)
                append(run.upperBound, to: &out)
            }
            return out
        }
    }

    static func decodeMarking(_ bytes: [UInt8]) -> Marking? {
        if let list = decodeMarker(bytes) { return .attempts(list) }
        guard bytes.count >= 21, bytes[0] == 0xC1 else { return nil }
        let count = Int(bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 17, as: UInt32.self)) })
        guard bytes.count == 21 + 16 * count else { return nil }
        var runs: [ClosedRange<UInt64>] = []
        for i in 0..<count {
            let first = read(bytes, 21 + 16 * i), last = read(bytes, 29 + 16 * i)
            guard first <= last else { return nil }
            runs.append(first...last)
        }
        return .through(life: read(bytes, 1), sequence: read(bytes, 9), aborted: runs)
    }

    private static func append(_ v: UInt64, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func read(_ b: [UInt8], _ at: Int) -> UInt64 {
        b.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    }
}
