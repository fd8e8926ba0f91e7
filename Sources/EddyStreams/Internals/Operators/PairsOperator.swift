/// `pairs`: per group (a user), the last distinct items, and for each record the pairs of its
/// item with them, forwarded as records (`Topology.Pairs` states the rules). Below it a
/// `decay` grouped by `[item, other]` is the co-view matrix: it re-keys by item, and its
/// partials combine before the repartition topic like any decay's.
///
/// State, in the node's key-value store, per group: its items, most recently arrived first,
/// each with the largest event time it was seen at. With `within`, one event-time timer per
/// group at its newest time + within removes a group that can pair with nothing recent.
final class PairsOperator: OperatorNode {
    /// The compiled `pairs` node.
    struct Spec: Sendable {
        let groupFields: [Int]
        let itemField: Int
        let otherField: Int
        /// `"item":` and `"other":` as JSON.
        let itemName: [UInt8]
        let otherName: [UInt8]
        let last: Int
        let withinMs: Int64?
    }

    private let spec: Spec
    private let store: KeyValueStore
    private let timers: TaskTimers?
    /// Decodes the pair records this node forwards.
    private let emitted: RecordDecoder
    /// Groups changed since the last commit, decoded (written to the store at commit).
    private var changed: [GroupKey: [Item]] = [:]
    private var keyBuffer: [UInt8] = []
    private var item: [UInt8] = []
    private var pair: [UInt8] = []
    /// The current record's JSON without the item and other members, its closing brace
    /// left off, and its decoded slots; built at its first pair.
    private var prefix: [UInt8] = []
    private var prefixSlots: [FieldSlot] = []
    private var prefixIsEmpty = false
    private var prefixReady = false

    /// A group's items, most recently arrived first.
    struct Item: Equatable {
        var value: [UInt8]
        var time: Int64
    }

    init(index: Int, spec: Spec, store: KeyValueStore, timers: TaskTimers?, topology: CompiledTopology, recordSinks: [CompiledSink]) {
        self.spec = spec
        self.store = store
        self.timers = timers
        emitted = RecordDecoder(topology)
        super.init(index: index, recordSinks: recordSinks)
    }

    override var stores: [any StateStore] { [store] }

    override func process(_ record: Record, in task: StreamTask) throws {
        item.removeAll(keepingCapacity: true)
        record.fields.appendValue(spec.itemField, from: record.value, to: &item)
        // The source decoder dead-letters records without an item; one emitted by an
        // operator above may still lack it.
        guard !item.isEmpty else { return }
        let key = groupKey(record)
        var items = try load(key)
        prefixReady = false
        let t = record.timestamp
        let expiredBefore = expiry(of: items)
        for other in items where other.value != item {
            if let within = spec.withinMs, abs(t - other.time) > within { continue }
            try forwardPair(of: record, item: item, other: other.value, in: task)
            try forwardPair(of: record, item: other.value, other: item, in: task)
        }
        var time = t
        if let i = items.firstIndex(where: { $0.value == item }) { time = max(time, items.remove(at: i).time) }
        items.insert(Item(value: item, time: time), at: 0)
        if items.count > spec.last { items.removeLast(items.count - spec.last) }
        changed[GroupKey(bytes: key)] = items
        if let timers, let expires = expiry(of: items), expires != expiredBefore {
            if let old = expiredBefore { timers.cancel(node: index, key: key, at: old) }
            timers.schedule(node: index, key: key, at: expires)
        }
    }

    /// When a group can pair with nothing recent any more: its newest time + within.
    private func expiry(of items: [Item]) -> Int64? {
        guard let within = spec.withinMs, let newest = items.map(\.time).max() else { return nil }
        return newest + within
    }

    override func timerFired(key: [UInt8], at time: Int64, in task: StreamTask) throws {
        guard let expires = expiry(of: try load(key)) else { return }
        if expires > time {
            // Not reachable while timers move with the newest time; kept for a `within`
            // that grew since the timer was set.
            timers?.schedule(node: index, key: key, at: expires)
            return
        }
        changed.removeValue(forKey: GroupKey(bytes: key))
        store.delete(key)
    }

    private func load(_ key: [UInt8]) throws -> [Item] {
        if let items = changed[GroupKey(bytes: key)] { return items }
        return try store.get(key).map(Self.decode) ?? []
    }

    override func prepareCommit() throws {
        for (key, items) in changed { store.put(key.bytes, Self.encode(items)) }
    }

    override func committed() { changed.removeAll(keepingCapacity: true) }

    /// Forwards `record` with its item set to `item` and `other` set to `other`.
    ///
    /// The record without its item and other members (`prefix`, its closing brace left
    /// off) is built and decoded once per record, however many pairs it makes; each pair
    /// appends the two members and patches their two slots, without decoding the JSON
    /// again (perf on Topologies/coview.yaml: rewriting and decoding every pair was ~60% of
    /// the operator's time).
    private func forwardPair(of record: Record, item: [UInt8], other: [UInt8], in task: StreamTask) throws {
        if !prefixReady {
            RecordRewrite.rewrite(record, removing: [spec.itemField, spec.otherField], appending: 0, into: &prefix) { _, _ in }
            try prefix.withUnsafeBytes { try emitted.extract($0) }
            prefixSlots.removeAll(keepingCapacity: true)
            prefixSlots.append(contentsOf: emitted.slots)
            prefix.removeLast()  // the '}'
            prefixIsEmpty = prefix.last == UInt8(ascii: "{")
            prefixReady = true
        }
        pair.removeAll(keepingCapacity: true)
        pair.append(contentsOf: prefix)
        if !prefixIsEmpty { pair.append(UInt8(ascii: ",")) }
        pair.append(contentsOf: spec.itemName)
        let itemSlot = appendString(item, to: &pair)
        pair.append(UInt8(ascii: ","))
        pair.append(contentsOf: spec.otherName)
        let otherSlot = appendString(other, to: &pair)
        pair.append(UInt8(ascii: "}"))
        for (i, slot) in prefixSlots.enumerated() { emitted.slots[i] = slot }
        emitted.slots[spec.itemField] = itemSlot
        emitted.slots[spec.otherField] = otherSlot
        try pair.withUnsafeBytes { value in
            try forward(Record(value: value, fields: emitted, timestamp: record.timestamp, offset: record.offset), in: task)
        }
    }

    /// Appends `text` as a JSON string and returns its slot (the text between the quotes).
    private func appendString(_ text: [UInt8], to out: inout [UInt8]) -> FieldSlot {
        let quote = out.count
        appendJSONString(text[...], to: &out)
        let length = out.count - quote - 2
        return FieldSlot(start: Int32(quote + 1), length: Int32(length), kind: .string, escaped: length != text.count)
    }

    /// The group key of `record` (`GroupKey`): a copy of exactly its size, since the
    /// operator keeps it.
    private func groupKey(_ record: Record) -> [UInt8] {
        GroupKey.build(spec.groupFields, of: record, into: &keyBuffer, scratch: &pair)
        return GroupKey.copy(keyBuffer)
    }

    // MARK: encoding

    /// Per item, oldest-arrived last: its time (Int64), a 4-byte length and its bytes,
    /// little-endian. Never empty: a group has at least one item.
    static func encode(_ items: [Item]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(items.reduce(0) { $0 + 12 + $1.value.count })
        for item in items {
            withUnsafeBytes(of: item.time.littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(item.value.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: item.value)
        }
        return out
    }

    static func decode(_ bytes: [UInt8]) -> [Item] {
        var items: [Item] = []
        bytes.withUnsafeBytes { raw in
            var p = 0
            while p + 12 <= raw.count {
                let time = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: p, as: Int64.self))
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: p + 8, as: UInt32.self)))
                guard p + 12 + length <= raw.count else { break }
                items.append(Item(value: Array(raw[(p + 12)..<(p + 12 + length)]), time: time))
                p += 12 + length
            }
        }
        return items
    }
}
