import EddyKafka
import EddyState

/// The downstream side of one repartition partition: decides which upstream partials are
/// committed and adds each committed one to the store exactly once, on any broker — also on
/// one that delivers records of aborted transactions (Tansu 0.6.0).
///
/// Every upstream attempt that commits an upstream partition's offsets writes to every
/// repartition partition: its partials for that partition's keys (or one empty record),
/// headed with the attempt and the upstream input range `start..<end` they cover. So, per
/// upstream partition, the committed attempts seen here form one unbroken chain of ranges.
/// The intake keeps `applied[upstream]`, the end of the last applied range, and holds an
/// attempt's records pending until one of:
///
/// - a marker names the attempt: it committed; applied if it ends past `applied`. A marker
///   also settles that life's older attempts still pending: had they committed, their own
///   marker would have come first (every commit writes the markers owed), so they aborted;
/// - a resolution `(upstream, C)` arrives: a new owner of the upstream partition found the
///   group at C. Of the pending attempts from that upstream, only the last committed one
///   can be unmarked; it ends at C and starts where the chain stands (`start == applied`;
///   with nothing applied yet, the earliest start). It is applied; the rest aborted.
///
/// Pending records and `applied` are state, in the intake's own store (its column family
/// and changelog, beside the aggregate's), so the task's state is a function of the
/// repartition offset the group has committed, like any other task's state: restore, the
/// Redis fence and changelog resolution work unchanged. Owned by the task's stream thread.
final class RepartitionIntake {
    private struct Source: Hashable {
        let attempt: CommitAttempt
        let upstream: Int32
    }

    private struct Pending {
        let start: Int64
        let end: Int64
        /// Records back to back: key length (4, little-endian), key, value length, value.
        var records: [UInt8] = []
        var changed = true
    }

    let table: AggregateTable
    /// Where the pending attempts and the applied positions are kept (exactly-once only:
    /// at-least-once applies every partial at once and keeps nothing).
    let store: KeyValueStore?
    private let usesMarkers: Bool
    private var pending: [Source: Pending] = [:]
    private var applied: [Int32: Int64] = [:]

    init(table: AggregateTable, store: KeyValueStore?, usesMarkers: Bool) {
        self.table = table
        self.store = store
        self.usesMarkers = usesMarkers
    }

    /// Reads the pending attempts and applied positions from the store.
    func load() {
        for (key, value) in store?.range(from: IntakeKeys.prefix, to: nil) ?? [] {
            guard let kind = key.withUnsafeBytes(IntakeKeys.kind) else { continue }
            switch kind {
            case .applied(let upstream):
                if let offset = decodeOffset(value) { applied[upstream] = offset }
            case .pending(let attempt, let upstream):
                guard value.count >= 16, let start = decodeOffset(Array(value[0..<8])), let end = decodeOffset(Array(value[8..<16])) else { continue }
                var entry = Pending(start: start, end: end)
                entry.records = Array(value[16...])
                entry.changed = false
                pending[Source(attempt: attempt, upstream: upstream)] = entry
            }
        }
    }

    /// Nothing waits for a marker or a resolution.
    var isSettled: Bool { pending.isEmpty }

    var hasChanges: Bool { store?.hasChanges == true || pending.values.contains { $0.changed } }

    /// Takes one repartition record: data (partials), a marker or a resolution.
    func receive(_ message: KafkaMessage) throws {
        if let header = message.header(InBandHeaders.partial) {
            guard let partial = InBandHeaders.decodePartial(header) else { return }
            try add(partial, key: message.key, value: message.value)
        } else if message.header(InBandHeaders.marker) != nil {
            for attempt in InBandHeaders.decodeMarker(Array(message.value)) ?? [] { try release(attempt) }
        } else if message.header(InBandHeaders.resolution) != nil {
            guard let r = InBandHeaders.decodeResolution(Array(message.value)) else { return }
            try resolve(upstream: r.upstream, committed: r.committed)
        }
    }

    func add(_ partial: InBandHeaders.Partial, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer) throws {
        guard usesMarkers else {
            // At-least-once: no transactions, no markers; every record counts.
            if let key, key.count > 0 { try merge(key, value) }
            return
        }
        // A range the chain is already past can never be applied.
        if let at = applied[partial.upstream], partial.end <= at { return }
        let source = Source(attempt: partial.attempt, upstream: partial.upstream)
        var entry = pending.removeValue(forKey: source) ?? Pending(start: partial.start, end: partial.end)
        if let key, key.count > 0 {
            appendLengthPrefixed(key.assumingMemoryBound(to: UInt8.self), to: &entry.records)
            appendLengthPrefixed(value.assumingMemoryBound(to: UInt8.self), to: &entry.records)
        }
        entry.changed = true
        pending[source] = entry
    }

    func release(_ attempt: CommitAttempt) throws {
        for source in pending.keys where source.attempt.life == attempt.life {
            if source.attempt == attempt {
                try apply(source)
            } else if source.attempt.sequence < attempt.sequence {
                drop(source)
            }
        }
    }

    func resolve(upstream: Int32, committed: Int64) throws {
        let from = pending.filter { $0.key.upstream == upstream }
        let chain = applied[upstream]
        let candidates = from.filter { source in source.value.end == committed && (chain == nil || source.value.start == chain) }
        if let last = candidates.min(by: { $0.value.start < $1.value.start }) { try apply(last.key) }
        for source in from.keys where pending[source] != nil { drop(source) }
    }

    private func apply(_ source: Source) throws {
        guard let entry = remove(source), entry.end > applied[source.upstream] ?? .min else { return }
        try entry.records.withUnsafeBytes { all in
            var p = 0
            while p < all.count {
                let key = Self.field(all, &p)
                let value = Self.field(all, &p)
                try merge(key, value)
            }
        }
        applied[source.upstream] = entry.end
        store?.put(IntakeKeys.applied(source.upstream), encodeOffset(entry.end))
    }

    private func drop(_ source: Source) {
        _ = remove(source)
    }

    private func remove(_ source: Source) -> Pending? {
        guard let entry = pending.removeValue(forKey: source) else { return nil }
        store?.delete(IntakeKeys.pending(source.attempt, source.upstream))
        return entry
    }

    private func merge(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws {
        let e = try table.entry(for: Array(key))
        table.merge(value, into: e)
    }

    /// Puts the pending attempts that changed into the store: call before the store's
    /// changes are sent.
    func prepareCommit() {
        for (source, entry) in pending where entry.changed {
            var value = encodeOffset(entry.start) + encodeOffset(entry.end)
            value.append(contentsOf: entry.records)
            store?.put(IntakeKeys.pending(source.attempt, source.upstream), value)
            pending[source]!.changed = false
        }
    }

    private static func field(_ all: UnsafeRawBufferPointer, _ p: inout Int) -> UnsafeRawBufferPointer {
        let n = Int(UInt32(littleEndian: all.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
        defer { p += 4 + n }
        return UnsafeRawBufferPointer(rebasing: all[(p + 4)..<(p + 4 + n)])
    }
}

/// The keys of an intake's store: per upstream partition the end of the last applied range,
/// and the pending attempts.
enum IntakeKeys {
    static let prefix: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]

    enum Kind {
        case applied(upstream: Int32)
        case pending(CommitAttempt, upstream: Int32)
    }

    static func applied(_ upstream: Int32) -> [UInt8] {
        prefix + [UInt8(ascii: "a")] + withUnsafeBytes(of: upstream.bigEndian, Array.init)
    }

    static func pending(_ attempt: CommitAttempt, _ upstream: Int32) -> [UInt8] {
        prefix + [UInt8(ascii: "p")] + withUnsafeBytes(of: attempt.life.bigEndian, Array.init)
            + withUnsafeBytes(of: attempt.sequence.bigEndian, Array.init) + withUnsafeBytes(of: upstream.bigEndian, Array.init)
    }

    static func kind(_ key: UnsafeRawBufferPointer) -> Kind? {
        guard key.count > 5, key.starts(with: prefix) else { return nil }
        func int32(_ at: Int) -> Int32 { Int32(bigEndian: key.loadUnaligned(fromByteOffset: at, as: Int32.self)) }
        func uint64(_ at: Int) -> UInt64 { UInt64(bigEndian: key.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        switch key[4] {
        case UInt8(ascii: "a") where key.count == 9: return .applied(upstream: int32(5))
        case UInt8(ascii: "p") where key.count == 25: return .pending(CommitAttempt(life: uint64(5), sequence: uint64(13)), upstream: int32(21))
        default: return nil
        }
    }
}
