import EddyKafka
import EddyState

/// Where an intake hands the records it releases: the task's first node (an aggregate's
/// store merges partials; other nodes process records).
protocol RepartitionTarget: AnyObject {
    func deliver(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws
    /// An upstream task's stream time advanced (`RepartitionIntake.watermark` may have).
    func upstreamTimeAdvanced() throws
}

/// The downstream side of one repartition partition: decides which upstream records
/// (partials or records) are committed and delivers each committed one exactly once, on any
/// broker — also on one that delivers records of aborted transactions (Tansu 0.6.0).
///
/// Every upstream attempt that commits an upstream partition's offsets writes to every
/// repartition partition: its records for that partition's keys (or one empty record),
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
/// Event time: each attempt carries its upstream task's stream time at the commit. Once the
/// attempt is applied, that is `streamTimes[upstream]`; the task's stream time (what fires
/// its timers) is the smallest over all upstream partitions, `watermark`, so a session
/// closes only when no upstream can still send a record that is on time for it, however
/// the upstream tasks interleave. An upstream partition that has sent nothing yet holds it
/// at its minimum (as a Flink watermark without idleness).
///
/// Pending records, `applied` and the stream times are state, in the intake's own store (its column family
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
        let streamTime: Int64
        /// `InBandHeaders.Partial.rekeyedEnd`: tells apart attempts with the same `end`.
        let rekeyedEnd: Int64
        /// Records back to back: key length (4, little-endian), key, value length, value.
        var records: [UInt8] = []
        /// How much of `records` the store holds in chunks; whether the attempt's key is in
        /// the store, and whether it holds the records too (written by an Eddy before chunks).
        var storedBytes = 0
        var headerStored = false
        var storedWhole = false

        var changed: Bool { !headerStored || storedWhole || storedBytes < records.count }
    }

    /// Where the pending attempts and the applied positions are kept (exactly-once only:
    /// at-least-once delivers every record at once and keeps nothing).
    let store: KeyValueStore?
    /// A pending attempt's records are stored in chunks of this many bytes, so no changelog
    /// record grows with the attempt: an upstream commit after a catch-up batch sends one
    /// partition tens of thousands of records (recs.yaml's model, 200k events: one value past
    /// the 2 MiB producer queue of a 64 MB budget, which no drain could ever make room for).
    /// Each commit writes only the chunks that grew; 64 KiB bounds that rewrite. Chunk n
    /// holds bytes n × size ..< (n + 1) × size, so stores written with one size are read
    /// right only with it: changing it needs a migration of pending chunks.
    private let chunkBytes: Int
    private let usesMarkers: Bool
    private var pending: [Source: Pending] = [:]
    private var applied: [Int32: Int64] = [:]
    private var streamTimes: [Int32: Int64] = [:]
    /// At-least-once: per upstream, the attempt being received and its stream time. Its
    /// records may still be coming; its marker, or the next attempt's first record, says
    /// it is whole.
    private var receiving: [Int32: (attempt: CommitAttempt, streamTime: Int64)] = [:]
    private let upstreams: Int32

    /// `upstreams`: the upstream sub-topology's partition count.
    init(store: KeyValueStore?, usesMarkers: Bool, upstreams: Int, chunkBytes: Int = 64 << 10) {
        self.store = store
        self.chunkBytes = chunkBytes
        self.usesMarkers = usesMarkers
        self.upstreams = Int32(upstreams)
    }

    /// The event time every upstream partition has reached (`.min` until each has
    /// committed an attempt with records of its own).
    var watermark: Int64 {
        var w = Int64.max
        for u in 0..<upstreams { w = min(w, streamTimes[u] ?? .min) }
        return w
    }

    /// Reads the pending attempts and applied positions from the store.
    func load() {
        var chunks: [Source: [UInt32: [UInt8]]] = [:]
        for (key, value) in store?.range(from: IntakeKeys.prefix, to: nil) ?? [] {
            guard let kind = key.withUnsafeBytes(IntakeKeys.kind) else { continue }
            switch kind {
            case .applied(let upstream):
                guard value.count == 16, let end = decodeOffset(Array(value[0..<8])), let time = decodeOffset(Array(value[8..<16])) else { continue }
                applied[upstream] = end
                streamTimes[upstream] = time
            case .pending(let attempt, let upstream):
                guard value.count >= 32, let start = decodeOffset(Array(value[0..<8])), let end = decodeOffset(Array(value[8..<16])),
                      let time = decodeOffset(Array(value[16..<24])), let rekeyedEnd = decodeOffset(Array(value[24..<32])) else { continue }
                var entry = Pending(start: start, end: end, streamTime: time, rekeyedEnd: rekeyedEnd)
                // Before chunks, the records followed the header in this one value: the next
                // commit stores them again, in chunks.
                entry.records = Array(value[32...])
                entry.headerStored = true
                entry.storedWhole = value.count > 32
                pending[Source(attempt: attempt, upstream: upstream)] = entry
            case .chunk(let attempt, let upstream, let index):
                chunks[Source(attempt: attempt, upstream: upstream), default: [:]][index] = value
            }
        }
        for (source, parts) in chunks {
            guard pending[source] != nil else {
                // Chunks without their attempt's key: unreadable (never written so).
                for index in parts.keys { store?.delete(IntakeKeys.chunk(source.attempt, source.upstream, index)) }
                continue
            }
            for index in parts.keys.sorted() { pending[source]!.records += parts[index]! }
        }
        for source in pending.keys where !pending[source]!.storedWhole { pending[source]!.storedBytes = pending[source]!.records.count }
    }

    /// Nothing waits for a marker or a resolution.
    var isSettled: Bool { pending.isEmpty }

    var hasChanges: Bool { store?.hasChanges == true || pending.values.contains { $0.changed } }

    /// Takes one repartition record: data (partials or records), a marker or a resolution;
    /// what it settles as committed goes to `target`.
    func receive(_ message: KafkaMessage, into target: any RepartitionTarget) throws {
        if let header = message.header(InBandHeaders.partial) {
            guard let partial = InBandHeaders.decodePartial(header) else { return }
            try add(partial, key: message.key, value: message.value, into: target)
        } else if message.header(InBandHeaders.marker) != nil {
            // Repartition markers name their attempts (`StreamProducer.writeMarkerIfOwed`).
            for attempt in InBandHeaders.decodeMarker(Array(message.value)) ?? [] { try release(attempt, into: target) }
        } else if message.header(InBandHeaders.resolution) != nil {
            guard let r = InBandHeaders.decodeResolution(Array(message.value)) else { return }
            try resolve(upstream: r.upstream, committed: r.committed, rekeyedCommitted: r.rekeyedCommitted, into: target)
        }
    }

    func add(_ partial: InBandHeaders.Partial, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, into target: any RepartitionTarget) throws {
        guard usesMarkers else {
            // At-least-once: no transactions, no markers; every record counts.
            if let open = receiving[partial.upstream], open.attempt != partial.attempt { try advance(partial.upstream, to: open.streamTime, target) }
            receiving[partial.upstream] = (partial.attempt, partial.streamTime)
            if let key, key.count > 0 { try target.deliver(key: key, value: value) }
            return
        }
        // A range the chain is already past can never be applied.
        if let at = applied[partial.upstream], partial.end <= at { return }
        let source = Source(attempt: partial.attempt, upstream: partial.upstream)
        var entry = pending.removeValue(forKey: source) ?? Pending(start: partial.start, end: partial.end, streamTime: partial.streamTime, rekeyedEnd: partial.rekeyedEnd)
        if let key, key.count > 0 {
            appendLengthPrefixed(key.assumingMemoryBound(to: UInt8.self), to: &entry.records)
            appendLengthPrefixed(value.assumingMemoryBound(to: UInt8.self), to: &entry.records)
        }
        pending[source] = entry
    }

    func release(_ attempt: CommitAttempt, into target: any RepartitionTarget) throws {
        guard usesMarkers else {
            // At-least-once: the attempt's records are all here (its upstream flushed them
            // before committing); its stream time counts now, not at the next attempt.
            for (upstream, open) in receiving where open.attempt == attempt {
                receiving[upstream] = nil
                try advance(upstream, to: open.streamTime, target)
            }
            return
        }
        for source in pending.keys where source.attempt.life == attempt.life {
            if source.attempt == attempt {
                try apply(source, into: target)
            } else if source.attempt.sequence < attempt.sequence {
                drop(source)
            }
        }
    }

    /// `committed` and `rekeyedCommitted`: the upstream task's committed position and source
    /// repartition offset (the attempt that ends there is the last committed one).
    func resolve(upstream: Int32, committed: Int64, rekeyedCommitted: Int64 = 0, into target: any RepartitionTarget) throws {
        let from = pending.filter { $0.key.upstream == upstream }
        let chain = applied[upstream]
        let candidates = from.filter { source in
            source.value.end == committed && source.value.rekeyedEnd == rekeyedCommitted && (chain == nil || source.value.start == chain)
        }
        if let last = candidates.min(by: { $0.value.start < $1.value.start }) { try apply(last.key, into: target) }
        for source in from.keys where pending[source] != nil { drop(source) }
    }

    private func apply(_ source: Source, into target: any RepartitionTarget) throws {
        guard let entry = remove(source), entry.end > applied[source.upstream] ?? .min else { return }
        try entry.records.withUnsafeBytes { all in
            var p = 0
            while p < all.count {
                let key = Self.field(all, &p)
                let value = Self.field(all, &p)
                try target.deliver(key: key, value: value)
            }
        }
        applied[source.upstream] = entry.end
        store?.put(IntakeKeys.applied(source.upstream), encodeOffset(entry.end) + encodeOffset(entry.streamTime))
        try advance(source.upstream, to: entry.streamTime, target)
    }

    /// At-least-once, delivered whole attempts (the test driver): takes the attempts
    /// received so far as complete.
    func attemptsComplete(into target: any RepartitionTarget) throws {
        for (upstream, open) in receiving { try advance(upstream, to: open.streamTime, target) }
        receiving.removeAll()
    }

    private func advance(_ upstream: Int32, to time: Int64, _ target: any RepartitionTarget) throws {
        guard time > streamTimes[upstream] ?? .min else { return }
        streamTimes[upstream] = time
        try target.upstreamTimeAdvanced()
    }

    private func drop(_ source: Source) {
        _ = remove(source)
    }

    private func remove(_ source: Source) -> Pending? {
        guard let entry = pending.removeValue(forKey: source) else { return nil }
        if entry.headerStored { store?.delete(IntakeKeys.pending(source.attempt, source.upstream)) }
        for index in 0..<chunkCount(entry.storedBytes) { store?.delete(IntakeKeys.chunk(source.attempt, source.upstream, index)) }
        return entry
    }

    private func chunkCount(_ bytes: Int) -> UInt32 { UInt32((bytes + chunkBytes - 1) / chunkBytes) }

    /// Puts what changed of the pending attempts into the store: a new attempt's header,
    /// and the chunks its records grew into since the last commit (the last one again, if
    /// it grew). Call before the store's changes are sent.
    func prepareCommit() {
        for (source, entry) in pending where entry.changed {
            if !entry.headerStored || entry.storedWhole {
                store?.put(IntakeKeys.pending(source.attempt, source.upstream),
                           encodeOffset(entry.start) + encodeOffset(entry.end) + encodeOffset(entry.streamTime) + encodeOffset(entry.rekeyedEnd))
            }
            var index = entry.storedBytes / chunkBytes
            while index * chunkBytes < entry.records.count {
                store?.put(IntakeKeys.chunk(source.attempt, source.upstream, UInt32(index)),
                           Array(entry.records[(index * chunkBytes)..<min((index + 1) * chunkBytes, entry.records.count)]))
                index += 1
            }
            pending[source]!.headerStored = true
            pending[source]!.storedWhole = false
            pending[source]!.storedBytes = entry.records.count
        }
    }

    private static func field(_ all: UnsafeRawBufferPointer, _ p: inout Int) -> UnsafeRawBufferPointer {
        let n = Int(UInt32(littleEndian: all.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
        defer { p += 4 + n }
        return UnsafeRawBufferPointer(rebasing: all[(p + 4)..<(p + 4 + n)])
    }
}

/// The keys of an intake's store: per upstream partition the end of the last applied range
/// and its stream time, the pending attempts (their range and stream time), and their
/// records in chunks (after the attempt's key, in order).
enum IntakeKeys {
    static let prefix: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]

    enum Kind {
        case applied(upstream: Int32)
        case pending(CommitAttempt, upstream: Int32)
        case chunk(CommitAttempt, upstream: Int32, index: UInt32)
    }

    static func applied(_ upstream: Int32) -> [UInt8] {
        prefix + [UInt8(ascii: "a")] + withUnsafeBytes(of: upstream.bigEndian, Array.init)
    }

    static func pending(_ attempt: CommitAttempt, _ upstream: Int32) -> [UInt8] {
        prefix + [UInt8(ascii: "p")] + withUnsafeBytes(of: attempt.life.bigEndian, Array.init)
            + withUnsafeBytes(of: attempt.sequence.bigEndian, Array.init) + withUnsafeBytes(of: upstream.bigEndian, Array.init)
    }

    static func chunk(_ attempt: CommitAttempt, _ upstream: Int32, _ index: UInt32) -> [UInt8] {
        pending(attempt, upstream) + withUnsafeBytes(of: index.bigEndian, Array.init)
    }

    static func kind(_ key: UnsafeRawBufferPointer) -> Kind? {
        guard key.count > 5, key.starts(with: prefix) else { return nil }
        func int32(_ at: Int) -> Int32 { Int32(bigEndian: key.loadUnaligned(fromByteOffset: at, as: Int32.self)) }
        func uint64(_ at: Int) -> UInt64 { UInt64(bigEndian: key.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        switch key[4] {
        case UInt8(ascii: "a") where key.count == 9: return .applied(upstream: int32(5))
        case UInt8(ascii: "p") where key.count == 25: return .pending(CommitAttempt(life: uint64(5), sequence: uint64(13)), upstream: int32(21))
        case UInt8(ascii: "p") where key.count == 29:
            return .chunk(CommitAttempt(life: uint64(5), sequence: uint64(13)), upstream: int32(21), index: UInt32(bitPattern: int32(25)))
        default: return nil
        }
    }
}
