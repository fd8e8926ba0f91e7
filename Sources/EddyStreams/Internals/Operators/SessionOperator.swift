/// `session`: session windows on event time, per group (`Topology.SessionWindow` states the
/// rules). A record within `gap` of a group's session extends it; one that falls within
/// `gap` of two sessions merges them; one whose merged session would end more than `grace`
/// behind stream time is late (dead-lettered, `eddy_late_records_total`). A session closes
/// by a timer at end + gap + grace: it leaves the store, its Redis keys are deleted (or
/// expire), and it is forwarded to the node's children as a record (JSON with the outputs).
///
/// State, in the node's key-value store, per group: its open sessions, and the sessions
/// removed (closed, or merged into another) whose Redis keys the last commit deleted. Those
/// stay in the record until the next commit — which runs only once the previous commit's
/// Redis writes are done — so a restore after a crash between a commit and its Redis write
/// still finds, and deletes, them; a mark key per such group lets a task that reopens
/// drop them at its first commit. Groups touched since the last commit are kept decoded.
/// If `gap` or `grace` grew since a timer was set, the session's timer is moved when it
/// fires; if they shrank, the session closes at the old, later time.
final class SessionOperator: OperatorNode {
    /// The compiled `session` node.
    struct Spec: Sendable {
        let groupFields: [Int]
        let groupNames: [String]
        let gapMs: Int64
        let graceMs: Int64
        let eventTypeField: Int
        let itemField: Int
        let categoryField: Int
        let priceField: Int
        let cartTypes: [[UInt8]]
        let purchaseTypes: [[UInt8]]
        let closedTTLSeconds: Int?
        /// Set once the node's sinks are compiled.
        var sinks: [CompiledSink]
    }

    /// Output names after the group fields, in output order, and whether each is a number.
    static let outputs: [(name: String, isNumber: Bool)] = [
        ("session_id", false), ("start", true), ("end", true), ("duration_ms", true), ("events", true), ("event_counts", false),
        ("distinct_items", true), ("category_counts", false), ("top_category", false), ("last_item", false),
        ("cart_value", true), ("purchase_value", true),
    ]

    /// Outputs that name the whole group: `session_id` holds every group value.
    static let namingTheGroup: Set<Int> = [0]

    private let spec: Spec
    private let store: KeyValueStore
    private let timers: TaskTimers
    /// Decodes the closed sessions this node forwards.
    private let emitted: RecordDecoder

    private struct Group {
        /// Open sessions, by start.
        var sessions: [Session] = []
        /// Sessions removed since the last commit, or whose removal the last commit wrote.
        var removed: [(session: Session, closed: Bool)] = []
    }
    /// Groups changed since the last commit, decoded.
    private var changed: [GroupKey: Group] = [:]
    /// Groups to write to Redis at the next commit without a change (restored newer than Redis).
    private var toRender = Set<GroupKey>()
    /// Groups whose first n removals the last commit wrote to Redis: dropped at the next
    /// commit.
    private var removalsWritten: [GroupKey: Int] = [:]
    private var keyBuffer: [UInt8] = []
    private var scratch: [UInt8] = []

    init(index: Int, spec: Spec, store: KeyValueStore, timers: TaskTimers, topology: CompiledTopology) {
        self.spec = spec
        self.store = store
        self.timers = timers
        emitted = RecordDecoder(topology)
        super.init(index: index, recordSinks: [])
        // Removals a committed attempt wrote before this task was last closed: Redis has
        // them (or, if that attempt's Redis write was lost, the restore renders them again).
        for (mark, _) in store.range(from: Self.removalsMark, to: nil) where mark.starts(with: Self.removalsMark) {
            let key = Array(mark.dropFirst(Self.removalsMark.count))
            // Only those: removals added after the reopen are not in Redis yet.
            let stored = (try? store.get(key)).flatMap { $0 }.map(Self.decodeGroup)?.removed.count ?? 0
            removalsWritten[GroupKey(bytes: key)] = stored
        }
    }

    /// Store keys `FF FF FF FF group` mark groups whose record holds removals (no group key
    /// starts so: its first 4 bytes are its length).
    private static let removalsMark: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]

    override var stores: [any StateStore] { [store] }

    // MARK: records

    override func process(_ record: Record, in task: StreamTask) throws {
        let key = groupKey(record)
        // Out of `changed` while it changes: no copy of its sessions per record.
        let changedBefore = changed.removeValue(forKey: GroupKey(bytes: key))
        var group = try changedBefore ?? store.get(key).map(Self.decodeGroup) ?? Group()
        let t = record.timestamp
        var start = t, end = t
        var touched: [Int] = []
        for (i, s) in group.sessions.enumerated() where s.start - spec.gapMs <= t && t <= s.end + spec.gapMs {
            touched.append(i)
            start = min(start, s.start)
            end = max(end, s.end)
        }
        if end < task.recordStreamTime - spec.graceMs {
            if let changedBefore { changed[GroupKey(bytes: key)] = changedBefore }
            task.metrics.lateRecords.add(1, ordering: .relaxed)
            task.deadLetter(DeadLetterReason(category: .late, message: "event time \(t) is more than the grace (\(spec.graceMs) ms) behind stream time \(task.recordStreamTime) for its session (it would end at \(end))"))
            return
        }
        var merged = Session(start: t, end: t)
        for i in touched {
            let old = group.sessions[i]
            merged.absorb(old)
            timers.cancel(node: index, key: timerKey(key, old.start), at: closeTime(of: old))
            if old.start != start { group.removed.append((old, false)) }
        }
        merged.add(record, spec)
        for i in touched.reversed() { group.sessions.remove(at: i) }
        group.sessions.insert(merged, at: group.sessions.firstIndex { $0.start > merged.start } ?? group.sessions.count)
        timers.schedule(node: index, key: timerKey(key, merged.start), at: closeTime(of: merged))
        changed[GroupKey(bytes: key)] = group
    }

    override func timerFired(key: [UInt8], at time: Int64, in task: StreamTask) throws {
        guard key.count > 8 else { return }
        let group = Array(key.dropLast(8))
        let start = key.withUnsafeBytes { Int64(bitPattern: UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: key.count - 8, as: UInt64.self))) }
        var state = try load(group)
        guard let i = state.sessions.firstIndex(where: { $0.start == start }) else { return }
        if closeTime(of: state.sessions[i]) > time {
            // Set before `gap` or `grace` grew: the session closes at its new time.
            timers.schedule(node: index, key: key, at: closeTime(of: state.sessions[i]))
            return
        }
        let session = state.sessions.remove(at: i)
        state.removed.append((session, true))
        changed[GroupKey(bytes: group)] = state
        var json: [UInt8] = []
        appendJSON(session, group: group, to: &json)
        try json.withUnsafeBytes { value in
            try emitted.extract(value)
            try forward(Record(value: value, fields: emitted, timestamp: session.end, offset: session.lastOffset), in: task)
        }
    }

    private func closeTime(of session: Session) -> Int64 { session.end + spec.gapMs + spec.graceMs }

    private func timerKey(_ group: [UInt8], _ start: Int64) -> [UInt8] {
        group + withUnsafeBytes(of: UInt64(bitPattern: start).bigEndian, Array.init)
    }

    /// The group key of `record` (`GroupKey`): a copy of exactly its size, since the
    /// operator keeps it.
    private func groupKey(_ record: Record) -> [UInt8] {
        GroupKey.build(spec.groupFields, of: record, into: &keyBuffer, scratch: &scratch)
        return GroupKey.copy(keyBuffer)
    }

    private func load(_ key: [UInt8]) throws -> Group {
        if let group = changed[GroupKey(bytes: key)] { return group }
        return try store.get(key).map(Self.decodeGroup) ?? Group()
    }

    // MARK: commit

    override func restored(staleKeys: [[UInt8]], of store: any StateStore) throws {
        for key in staleKeys where !key.starts(with: Self.removalsMark) { toRender.insert(GroupKey(bytes: key)) }
    }

    /// Into the store: the changed groups, and the groups whose removals are in Redis now
    /// (the previous commit's Redis writes are done before the next commit begins) without them.
    override func prepareCommit() throws {
        for (key, written) in removalsWritten {
            guard var group = try changed[key] ?? store.get(key.bytes).map(Self.decodeGroup) else { continue }
            group.removed.removeFirst(min(written, group.removed.count))
            if group.removed.isEmpty { store.delete(Self.removalsMark + key.bytes) }
            if changed[key] != nil { changed[key] = group } else { save(group, key.bytes) }
        }
        removalsWritten = [:]  // once: a retried attempt must not drop them again
        for (key, group) in changed { save(group, key.bytes) }
    }

    private func save(_ group: Group, _ key: [UInt8]) {
        if group.sessions.isEmpty && group.removed.isEmpty { store.delete(key) } else { store.put(key, Self.encode(group)) }
        if !group.removed.isEmpty { store.put(Self.removalsMark + key, [1]) }
    }

    override func renderView(into view: inout RedisViewWriter, wholeState: Bool) throws {
        var groups = changed
        for key in toRender where groups[key] == nil { groups[key] = try store.get(key.bytes).map(Self.decodeGroup) ?? Group() }
        if wholeState {
            for (key, value) in store.range(from: [], to: Self.removalsMark) where groups[GroupKey(bytes: key)] == nil {
                groups[GroupKey(bytes: key)] = Self.decodeGroup(value)
            }
        }
        for (key, group) in groups {
            for (session, closed) in group.removed where !group.sessions.contains(where: { $0.start == session.start }) {
                remove(session, closed: closed, group: key.bytes, from: &view)
            }
            for session in group.sessions { write(session, group: key.bytes, to: &view) }
            if !group.removed.isEmpty { removalsWritten[key] = group.removed.count }
        }
    }

    override func committed() {
        changed.removeAll(keepingCapacity: true)
        toRender.removeAll()
    }

    private func write(_ session: Session, group: [UInt8], to view: inout RedisViewWriter) {
        for sink in spec.sinks { view.add(sink) { render($0, session, group, &$1) } }
    }

    /// A session left the state: its keys are deleted (a field or member of a shared key is
    /// removed instead), or written a last time and left to expire.
    private func remove(_ session: Session, closed: Bool, group: [UInt8], from view: inout RedisViewWriter) {
        for sink in spec.sinks {
            if sink.field == nil, closed, let ttl = spec.closedTTLSeconds {
                view.add(sink) { render($0, session, group, &$1) }
                view.expire(view.renderKey(of: sink) { render($0, session, group, &$1) }, seconds: ttl)
            } else {
                view.remove(sink) { render($0, session, group, &$1) }
            }
        }
    }

    // MARK: outputs

    private func render(_ ref: OutputRef, _ session: Session, _ group: [UInt8], _ out: inout [UInt8]) {
        switch ref {
        case .group(let i): appendGroupValue(i, of: group, to: &out)
        case .output(let i, _): appendOutput(i, session, group, to: &out)
        case .field: break  // not reachable: session sinks resolve to outputs only
        }
    }

    private func appendGroupValue(_ i: Int, of group: [UInt8], to out: inout [UInt8]) {
        group.withUnsafeBufferPointer { k in
            var p = 0
            for _ in 0..<i { p += 4 + Int(readLength(k, p)) }
            out.append(contentsOf: k[(p + 4)..<(p + 4 + Int(readLength(k, p)))])
        }
    }

    private func appendOutput(_ i: Int, _ s: Session, _ group: [UInt8], to out: inout [UInt8]) {
        func number(_ n: Int64) { out.append(contentsOf: String(n).utf8) }
        switch Self.outputs[i].name {
        case "session_id":
            for j in spec.groupFields.indices {
                appendGroupValue(j, of: group, to: &out)
                out.append(UInt8(ascii: ":"))
            }
            number(s.start)
        case "start": number(s.start)
        case "end": number(s.end)
        case "duration_ms": number(s.end - s.start)
        case "events": number(s.events)
        case "event_counts": appendCounts(s.eventCounts, to: &out)
        case "distinct_items": number(Int64(s.items.count))
        case "category_counts": appendCounts(s.categoryCounts, to: &out)
        case "top_category": out.append(contentsOf: s.topCategory)
        case "last_item": out.append(contentsOf: s.lastItem)
        case "cart_value": out.append(contentsOf: formatNumber(s.cartValue).utf8)
        default: out.append(contentsOf: formatNumber(s.purchaseValue).utf8)
        }
    }

    /// A JSON object of counts, keys in byte order.
    private func appendCounts(_ counts: [[UInt8]: Int64], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, key) in counts.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(key[...], to: &out)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: String(counts[key]!).utf8)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The closed session as the record forwarded downstream: the group fields and every output.
    private func appendJSON(_ s: Session, group: [UInt8], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        var first = true
        func field(_ name: String, quoted: Bool, _ value: (inout [UInt8]) -> Void) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            appendJSONString(Array(name.utf8)[...], to: &out)
            out.append(UInt8(ascii: ":"))
            var text: [UInt8] = []
            value(&text)
            if quoted { appendJSONString(text[...], to: &out) } else { out.append(contentsOf: text) }
        }
        for (j, name) in spec.groupNames.enumerated() { field(name, quoted: true) { appendGroupValue(j, of: group, to: &$0) } }
        for (i, output) in Self.outputs.enumerated() {
            let isObject = output.name == "event_counts" || output.name == "category_counts"
            field(output.name, quoted: !output.isNumber && !isObject) { appendOutput(i, s, group, to: &$0) }
        }
        out.append(UInt8(ascii: "}"))
    }

    // MARK: encoding

    private static func encode(_ group: Group) -> [UInt8] {
        var w = ByteWriter()
        w.int(Int64(group.sessions.count))
        for s in group.sessions { s.encode(into: &w) }
        w.int(Int64(group.removed.count))
        for (s, closed) in group.removed {
            w.int(closed ? 1 : 0)
            s.encode(into: &w)
        }
        return w.bytes
    }

    private static func decodeGroup(_ bytes: [UInt8]) -> Group {
        var r = ByteReader(bytes)
        var group = Group()
        for _ in 0..<r.count() { group.sessions.append(Session(from: &r)) }
        if !r.atEnd {
            for _ in 0..<r.count() {
                let closed = r.int() == 1
                group.removed.append((Session(from: &r), closed))
            }
        }
        return group
    }
}

/// One session's features.
private struct Session {
    var start: Int64
    var end: Int64
    var events: Int64 = 0
    /// Event time and input offset of the record `lastItem` came from.
    var lastTime = Int64.min
    var lastOffset = Int64.min
    var lastItem: [UInt8] = []
    var cartValue = 0.0
    var purchaseValue = 0.0
    var eventCounts: [[UInt8]: Int64] = [:]
    var categoryCounts: [[UInt8]: Int64] = [:]
    var items = Set<[UInt8]>()

    init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    mutating func add(_ record: Record, _ spec: SessionOperator.Spec) {
        let fields = record.fields, value = record.value
        events += 1
        func text(_ id: Int) -> [UInt8]? {
            let kind = fields.slots[id].kind
            guard kind != .absent, kind != .null else { return nil }
            var out: [UInt8] = []
            fields.appendValue(id, from: value, to: &out)
            return out
        }
        let type = text(spec.eventTypeField)
        if let type { eventCounts[type, default: 0] += 1 }
        if let category = text(spec.categoryField) { categoryCounts[category, default: 0] += 1 }
        if let item = text(spec.itemField) {
            items.insert(item)
            if (record.timestamp, record.offset) >= (lastTime, lastOffset) {
                (lastTime, lastOffset, lastItem) = (record.timestamp, record.offset, item)
            }
        }
        if let type, fields.slots[spec.priceField].kind == .number {
            let price = fields.double(spec.priceField, from: value)
            if spec.cartTypes.contains(type) { cartValue += price }
            if spec.purchaseTypes.contains(type) { purchaseValue += price }
        }
    }

    /// Takes another session's records in.
    mutating func absorb(_ other: Session) {
        start = min(start, other.start)
        end = max(end, other.end)
        events += other.events
        if (other.lastTime, other.lastOffset) > (lastTime, lastOffset) {
            (lastTime, lastOffset, lastItem) = (other.lastTime, other.lastOffset, other.lastItem)
        }
        cartValue += other.cartValue
        purchaseValue += other.purchaseValue
        eventCounts.merge(other.eventCounts, uniquingKeysWith: +)
        categoryCounts.merge(other.categoryCounts, uniquingKeysWith: +)
        items.formUnion(other.items)
    }

    /// The category with the highest count, ties to the smallest in byte order.
    var topCategory: [UInt8] {
        categoryCounts.max { a, b in a.value != b.value ? a.value < b.value : b.key.lexicographicallyPrecedes(a.key) }?.key ?? []
    }

    func encode(into w: inout ByteWriter) {
        for n in [start, end, events, lastTime, lastOffset] { w.int(n) }
        w.double(cartValue)
        w.double(purchaseValue)
        w.bytes(lastItem)
        for counts in [eventCounts, categoryCounts] {
            w.int(Int64(counts.count))
            for key in counts.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                w.bytes(key)
                w.int(counts[key]!)
            }
        }
        w.int(Int64(items.count))
        for item in items.sorted(by: { $0.lexicographicallyPrecedes($1) }) { w.bytes(item) }
    }

    init(from r: inout ByteReader) {
        start = r.int()
        end = r.int()
        events = r.int()
        lastTime = r.int()
        lastOffset = r.int()
        cartValue = r.double()
        purchaseValue = r.double()
        lastItem = r.bytes()
        for n in 0..<2 {
            var counts: [[UInt8]: Int64] = [:]
            for _ in 0..<r.count() {
                let key = r.bytes()
                counts[key] = r.int()
            }
            if n == 0 { eventCounts = counts } else { categoryCounts = counts }
        }
        for _ in 0..<r.count() { items.insert(r.bytes()) }
    }
}

/// Little-endian integers and length-prefixed bytes.
private struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func int(_ n: Int64) { withUnsafeBytes(of: n.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func double(_ d: Double) { int(Int64(bitPattern: d.bitPattern)) }
    mutating func bytes(_ b: [UInt8]) {
        withUnsafeBytes(of: UInt32(b.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: b)
    }
}

/// Reads what `ByteWriter` wrote; a truncated value reads as zeros and empty strings rather
/// than past its end.
private struct ByteReader {
    private let data: [UInt8]
    private var p = 0
    init(_ data: [UInt8]) { self.data = data }
    var atEnd: Bool { p >= data.count }
    mutating func int() -> Int64 {
        guard p + 8 <= data.count else { p = data.count; return 0 }
        defer { p += 8 }
        return data.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: p, as: Int64.self)) }
    }
    /// A count of elements: never more than the bytes left (each takes at least one).
    mutating func count() -> Int { Int(max(0, min(int(), Int64(data.count - p)))) }
    mutating func double() -> Double { Double(bitPattern: UInt64(bitPattern: int())) }
    mutating func bytes() -> [UInt8] {
        guard p + 4 <= data.count else { p = data.count; return [] }
        let n = data.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: p, as: UInt32.self))) }
        p += 4
        guard p + n <= data.count else { p = data.count; return [] }
        defer { p += n }
        return Array(data[p..<(p + n)])
    }
}

@inline(__always)
private func readLength(_ b: UnsafeBufferPointer<UInt8>, _ p: Int) -> UInt32 {
    UInt32(b[p]) | UInt32(b[p + 1]) << 8 | UInt32(b[p + 2]) << 16 | UInt32(b[p + 3]) << 24
}
