/// `model`: an online implicit-feedback matrix factorization (`Topology.MatrixFactorization`
/// states the rules). It runs in the one task of its repartition topic, which holds every
/// user's and item's vector, so each update sees the other side's current vectors.
///
/// Records wait in the store until stream time is past their time + grace, then are applied
/// in (time, user, item, weight) order: a replay, a restart or another interleaving of the
/// upstream partitions applies the same records in the same order. Why that order is final:
/// a record applied had time + grace < stream time, the least stream time over the upstream
/// tasks; any record they send later was judged by a stream time at least that, so it is
/// later than the applied one or late (skipped).
///
/// Store layout (the node's key-value store), ids as they appear in the records:
/// - `v u <user>`, `v i <item>`: the vector, k Float64, little-endian;
/// - `h u <user>`, `h i <item>`: the history, most recently touched first: per entry a
///   4-byte length, the other side's id and its confidence (Float64);
/// - `g u`, `g i`: the Gram Σ v vᵀ of each side's vectors (k×k Float64);
/// - `p <time BE, sign flipped> <user> <item> <weight bits BE>` (ids as `appendOrdered`
///   writes them, so keys sort by time, user, item, weight): a record waiting, its value
///   the count of such records (4 bytes);
/// - `a`: the time of the last record applied (8 bytes): a record not after it is late;
/// - `t u <user>`: with a `state_ttl`, the time of the user's last applied record
///   (`ModelUserExpiry`).
final class ModelOperator: OperatorNode {
    /// The compiled `model` node.
    struct Spec: Sendable {
        let userField: Int
        let itemField: Int
        let weightField: Int
        let weights: [([UInt8], Double)]
        let factors: Int
        let regularization: Double
        let missingWeight: Double
        let alpha: Double
        let userHistory: Int
        let itemHistory: Int
        let graceMs: Int64
        /// `state_ttl`: users idle this long leave (`ModelUserExpiry`).
        var userTTLMs: Int64? = nil
        /// Sinks of user rows and of item rows (`{user}` or `{item}` in the key).
        var userSinks: [CompiledSink] = []
        var itemSinks: [CompiledSink] = []
    }

    /// The two sides of the model, as the store's keys name them.
    enum Side: UInt8 {
        case user = 0x75  // "u"
        case item = 0x69  // "i"
    }

    private let spec: Spec
    private let store: KeyValueStore
    private let timers: TaskTimers
    private let als: ImplicitALS
    private let expiry: ModelUserExpiry?
    /// Vector keys of the users that left since the last commit (their Redis rows go).
    private var expired = Set<GroupKey>()
    /// Vectors, histories and Grams changed since the last commit (written at commit).
    private var vectors: [GroupKey: [Double]] = [:]
    private var histories: [GroupKey: [(id: [UInt8], confidence: Double)]] = [:]
    private var grams: [Side: [Double]] = [:]
    /// Rows to render at the next commit besides the changed ones (restored from the changelog).
    private var toRender = Set<GroupKey>()
    /// Records waiting (store key → count), read from the store at first use.
    private var pending: [GroupKey: UInt32] = [:]
    /// `pending`'s keys in apply order, so a timer takes the due ones without a scan of
    /// them all: while upstream partitions are read unevenly (a replay) thousands wait, and
    /// a scan per timer made a 120k-event replay quadratic (over 300 s in a debug build).
    private var order = MinHeap<Waiting>()
    private var pendingLoaded = false
    /// The time of the last record applied.
    private var appliedTime: Int64 = .min
    /// The earliest time a timer of this node is set for (nil: none known).
    private var timerAt: Int64?
    private var scratch: [UInt8] = []
    private var user: [UInt8] = []
    private var item: [UInt8] = []

    init(index: Int, spec: Spec, store: KeyValueStore, timers: TaskTimers) {
        self.spec = spec
        self.store = store
        self.timers = timers
        als = ImplicitALS(factors: spec.factors, regularization: spec.regularization, missingWeight: spec.missingWeight)
        expiry = spec.userTTLMs.map { ModelUserExpiry(ttlMs: $0, store: store) }
        super.init(index: index, recordSinks: [])
    }

    override var stores: [any StateStore] { [store] }

    /// The node's outputs besides the two ids: the vector, as a JSON array of float32 values.
    static let outputs = ["factors"]

    // MARK: records

    override func process(_ record: Record, in task: StreamTask) throws {
        guard let weight = spec.weights.first(where: { record.fields.equals(spec.weightField, $0.0, from: record.value) })?.1 else { return }
        try loadPending()
        let t = record.timestamp
        if t < task.recordStreamTime &- spec.graceMs || t <= appliedTime {
            task.metrics.lateRecords.add(1, ordering: .relaxed)
            return
        }
        user.removeAll(keepingCapacity: true)
        item.removeAll(keepingCapacity: true)
        record.fields.appendValue(spec.userField, from: record.value, to: &user)
        record.fields.appendValue(spec.itemField, from: record.value, to: &item)
        let key = GroupKey(bytes: Self.pendingKey(time: t, user: user, item: item, weight: weight))
        let count = (pending[key] ?? 0) + 1
        pending[key] = count
        if count == 1 { order.push(Waiting(key: key)) }
        store.put(key.bytes, withUnsafeBytes(of: count.littleEndian, Array.init))
        let due = t.addingReportingOverflow(spec.graceMs)
        let at = due.overflow ? Int64.max : due.partialValue
        if timerAt.map({ at < $0 }) ?? true {
            // One timer at the earliest due time: a later one would fire for nothing.
            if let old = timerAt { timers.cancel(node: index, key: Self.timerKey, at: old) }
            timers.schedule(node: index, key: Self.timerKey, at: at)
            timerAt = at
        }
    }

    override func timerFired(key: [UInt8], at time: Int64, in task: StreamTask) throws {
        try loadPending()
        timerAt = nil
        // Due: waiting records with time + grace < stream time, i.e. time < stream time − grace.
        let cutoff = task.streamTime &- spec.graceMs
        var applied = false
        while let next = order.min, next.time < cutoff {
            order.popMin()
            let (t, user, item, weight) = Self.decodePending(next.key.bytes)
            if let expiry {
                let idle = expiry.idle(before: t)
                for user in idle { try remove(user: user) }
                task.metrics.expiredGroups.add(idle.count, ordering: .relaxed)
            }
            for _ in 0..<(pending.removeValue(forKey: next.key) ?? 0) { try apply(user: user, item: item, weight: weight) }
            expiry?.applied(user, at: t)
            appliedTime = t
            applied = true
            store.delete(next.key.bytes)
        }
        if applied { store.put(Self.appliedKey, withUnsafeBytes(of: appliedTime.littleEndian, Array.init)) }
        if let next = order.min {
            let at = next.time &+ spec.graceMs
            timers.schedule(node: index, key: Self.timerKey, at: at)
            timerAt = at
        }
    }

    /// One record's update: the cell's confidence grows, then the user's vector is updated
    /// against the items' (`ImplicitALS`), then the item's against the users'.
    func apply(user: [UInt8], item: [UInt8], weight: Double) throws {
        let c = spec.alpha * weight
        var userHistory = try history(.user, user)
        var itemHistory = try history(.item, item)
        Self.touch(&userHistory, item, adding: c, limit: spec.userHistory)
        Self.touch(&itemHistory, user, adding: c, limit: spec.itemHistory)
        histories[GroupKey(bytes: Self.key(.history, .user, user))] = userHistory
        histories[GroupKey(bytes: Self.key(.history, .item, item))] = itemHistory
        // A new item's starting vector enters the Gram before the user's solve reads it.
        _ = try vector(.item, item)
        try update(.user, user, against: .item, userHistory)
        try update(.item, item, against: .user, itemHistory)
    }

    /// A user idle past the `state_ttl` leaves: its vector (out of the users' Gram), its
    /// history and, at the commit, its Redis rows.
    private func remove(user: [UInt8]) throws {
        let key = GroupKey(bytes: Self.key(.vector, .user, user))
        if let v = try existingVector(key) {
            vectors[key] = nil
            var g = try gram(.user)
            ImplicitALS.addOuter(v, sign: -1, to: &g)
            grams[.user] = g
        }
        let history = Self.key(.history, .user, user)
        histories[GroupKey(bytes: history)] = nil
        store.delete(key.bytes)
        store.delete(history)
        expired.insert(key)
    }

    private func update(_ side: Side, _ id: [UInt8], against other: Side, _ history: [(id: [UInt8], confidence: Double)]) throws {
        let old = try vector(side, id)
        let otherGram = try gram(other)
        var others: [Double] = []
        others.reserveCapacity(history.count * spec.factors)
        var history = history
        if other == .user && expiry != nil {
            // Users that left drop out of the item's history (those that came back since
            // stay: their records happened; their vector is the new one).
            var kept: [(id: [UInt8], confidence: Double)] = []
            for entry in history {
                guard let v = try existingVector(GroupKey(bytes: Self.key(.vector, .user, entry.id))) else { continue }
                others += v
                kept.append(entry)
            }
            if kept.count < history.count {
                history = kept
                histories[GroupKey(bytes: Self.key(.history, side, id))] = kept
            }
        } else {
            for entry in history { others += try vector(other, entry.id) }
        }
        let solved = als.update(old, gram: otherGram, vectors: others, confidences: history.map(\.confidence))
        var g = try gram(side)
        ImplicitALS.addOuter(old, sign: -1, to: &g)
        ImplicitALS.addOuter(solved, sign: 1, to: &g)
        grams[side] = g
        vectors[GroupKey(bytes: Self.key(.vector, side, id))] = solved
    }

    /// Moves `id` to the front of `history` with `c` more confidence, and cuts it to `limit`.
    static func touch(_ history: inout [(id: [UInt8], confidence: Double)], _ id: [UInt8], adding c: Double, limit: Int) {
        var confidence = c
        if let i = history.firstIndex(where: { $0.id == id }) { confidence += history.remove(at: i).confidence }
        history.insert((id, confidence), at: 0)
        if history.count > limit { history.removeLast(history.count - limit) }
    }

    // MARK: state

    /// A vector; one seen for the first time starts from `ImplicitALS.initialVector` and
    /// enters its side's Gram.
    private func vector(_ side: Side, _ id: [UInt8]) throws -> [Double] {
        let key = GroupKey(bytes: Self.key(.vector, side, id))
        if let v = try existingVector(key) { return v }
        let v = ImplicitALS.initialVector(id: id, side: side.rawValue, factors: spec.factors)
        var g = try gram(side)
        ImplicitALS.addOuter(v, sign: 1, to: &g)
        grams[side] = g
        vectors[key] = v
        return v
    }

    /// A vector changed since the last commit or stored; nil for one never seen (or gone).
    private func existingVector(_ key: GroupKey) throws -> [Double]? {
        try vectors[key] ?? store.get(key.bytes).map(Self.decodeDoubles)
    }

    private func history(_ side: Side, _ id: [UInt8]) throws -> [(id: [UInt8], confidence: Double)] {
        let key = GroupKey(bytes: Self.key(.history, side, id))
        if let h = histories[key] { return h }
        return try store.get(key.bytes).map(Self.decodeHistory) ?? []
    }

    private func gram(_ side: Side) throws -> [Double] {
        if let g = grams[side] { return g }
        guard let stored = try store.get(Self.gramKey(side)) else { return [Double](repeating: 0, count: spec.factors * spec.factors) }
        let g = Self.decodeDoubles(stored)
        // State of a model with another factor count cannot be updated: say so, not trap.
        guard g.count == spec.factors * spec.factors else {
            throw RuntimeError("the model's state has \(Int(Double(g.count).squareRoot())) factors per vector and the topology says \(spec.factors): run `eddy reset TOPOLOGY --to-earliest` and replay to train it afresh (or keep factors: \(Int(Double(g.count).squareRoot())))")
        }
        return g
    }

    private func loadPending() throws {
        guard !pendingLoaded else { return }
        pendingLoaded = true
        for (key, value) in store.range(from: [Self.pendingMark], to: [Self.pendingMark + 1]) where value.count == 4 {
            pending[GroupKey(bytes: key)] = value.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        }
        if let applied = try store.get(Self.appliedKey), applied.count == 8 {
            appliedTime = applied.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
        }
        if let expiry {
            expiry.load(appliedTime: appliedTime) {
                store.range(from: Self.key(.vector, .user, []), to: [Self.vectorMark, Side.user.rawValue + 1]).map { Array($0.key[2...]) }
            }
        } else {
            ModelUserExpiry.deleteTimes(in: store)
        }
        order = MinHeap(pending.keys.map(Waiting.init))
        if let first = order.min {
            timers.schedule(node: index, key: Self.timerKey, at: first.time &+ spec.graceMs)
            timerAt = first.time &+ spec.graceMs
        }
    }

    override func prepareCommit() throws {
        for (key, v) in vectors { store.put(key.bytes, Self.encodeDoubles(v)) }
        for (key, h) in histories { store.put(key.bytes, Self.encodeHistory(h)) }
        for (side, g) in grams { store.put(Self.gramKey(side), Self.encodeDoubles(g)) }
    }

    override func restored(staleKeys: [[UInt8]], of store: any StateStore) throws {
        for key in staleKeys where key.first == Self.vectorMark { toRender.insert(GroupKey(bytes: key)) }
        pending.removeAll()
        order.removeAll()
        pendingLoaded = false
    }

    override func renderView(into view: inout RedisViewWriter, wholeState: Bool) throws {
        var rows = vectors
        var removed = expired
        for key in toRender where rows[key] == nil {
            if let stored = try store.get(key.bytes) { rows[key] = Self.decodeDoubles(stored) } else { removed.insert(key) }
        }
        for key in removed.filter({ rows[$0] == nil }).sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) }) {
            guard key.bytes.count >= 2, key.bytes[1] == Side.user.rawValue else { continue }
            let id = key.bytes[2...]
            for sink in spec.userSinks { view.remove(sink) { ref, out in if case .output = ref {} else { out.append(contentsOf: id) } } }
        }
        if wholeState {
            for (key, value) in store.range(from: [Self.vectorMark], to: [Self.vectorMark + 1]) where rows[GroupKey(bytes: key)] == nil {
                rows[GroupKey(bytes: key)] = Self.decodeDoubles(value)
            }
        }
        // Key order: the commands are the same whatever the dictionary's order.
        for (key, v) in rows.sorted(by: { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }) {
            guard key.bytes.count >= 2, let side = Side(rawValue: key.bytes[1]) else { continue }
            let id = key.bytes[2...]
            for sink in side == .user ? spec.userSinks : spec.itemSinks {
                view.add(sink) { ref, out in
                    if case .output = ref { Self.appendJSON(v, to: &out) } else { out.append(contentsOf: id) }
                }
            }
        }
    }

    override func committed() {
        vectors.removeAll(keepingCapacity: true)
        histories.removeAll(keepingCapacity: true)
        grams.removeAll()
        toRender.removeAll()
        expired.removeAll()
    }

    /// A waiting record's store key, ordered as the keys sort: by time, user, item, weight.
    private struct Waiting: Comparable {
        let key: GroupKey
        let time: Int64

        init(key: GroupKey) {
            self.key = key
            time = ModelOperator.time(ofPending: key.bytes)
        }

        static func < (a: Waiting, b: Waiting) -> Bool { a.key.bytes.lexicographicallyPrecedes(b.key.bytes) }
        static func == (a: Waiting, b: Waiting) -> Bool { a.key == b.key }
    }

    // MARK: encoding

    private enum Kind: UInt8 {
        case vector = 0x76  // "v"
        case history = 0x68  // "h"
    }
    static let vectorMark: UInt8 = 0x76
    static let pendingMark: UInt8 = 0x70  // "p"
    static let appliedKey: [UInt8] = [0x61]  // "a"
    static let timerKey: [UInt8] = [0x6d]  // "m"

    private static func key(_ kind: Kind, _ side: Side, _ id: [UInt8]) -> [UInt8] { [kind.rawValue, side.rawValue] + id }
    private static func gramKey(_ side: Side) -> [UInt8] { [0x67, side.rawValue] }  // "g"

    static func pendingKey(time: Int64, user: [UInt8], item: [UInt8], weight: Double) -> [UInt8] {
        var key: [UInt8] = [pendingMark]
        withUnsafeBytes(of: (UInt64(bitPattern: time) ^ (1 << 63)).bigEndian) { key.append(contentsOf: $0) }
        appendOrdered(user, to: &key)
        appendOrdered(item, to: &key)
        // Positive weights order as their bit patterns.
        withUnsafeBytes(of: weight.bitPattern.bigEndian) { key.append(contentsOf: $0) }
        return key
    }

    /// `id` so that keys order as the ids do, byte by byte (a prefix first): a 0 byte is
    /// written 0 FF, and 0 0 ends the id.
    private static func appendOrdered(_ id: [UInt8], to key: inout [UInt8]) {
        for b in id {
            key.append(b)
            if b == 0 { key.append(0xFF) }
        }
        key += [0, 0]
    }

    private static func readOrdered(_ key: [UInt8], from start: inout Int) -> [UInt8] {
        var id: [UInt8] = []
        var p = start
        while p + 1 < key.count {
            if key[p] == 0 {
                if key[p + 1] == 0 { p += 2; break }
                id.append(0)
                p += 2
            } else {
                id.append(key[p])
                p += 1
            }
        }
        start = p
        return id
    }

    static func time(ofPending key: [UInt8]) -> Int64 {
        var bits: UInt64 = 0
        for b in key[1..<9] { bits = bits << 8 | UInt64(b) }
        return Int64(bitPattern: bits ^ (1 << 63))
    }

    static func decodePending(_ key: [UInt8]) -> (time: Int64, user: [UInt8], item: [UInt8], weight: Double) {
        var p = 9
        let user = readOrdered(key, from: &p)
        let item = readOrdered(key, from: &p)
        var bits: UInt64 = 0
        for b in key[(key.count - 8)...] { bits = bits << 8 | UInt64(b) }
        return (time(ofPending: key), user, item, Double(bitPattern: bits))
    }

    static func encodeDoubles(_ v: [Double]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 * v.count)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    static func decodeDoubles(_ bytes: [UInt8]) -> [Double] {
        bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 8)).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) }
        }
    }

    static func encodeHistory(_ history: [(id: [UInt8], confidence: Double)]) -> [UInt8] {
        var out: [UInt8] = []
        for (id, c) in history {
            id.withUnsafeBufferPointer { appendLengthPrefixed($0, to: &out) }
            withUnsafeBytes(of: c.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
        return out
    }

    static func decodeHistory(_ bytes: [UInt8]) -> [(id: [UInt8], confidence: Double)] {
        var out: [(id: [UInt8], confidence: Double)] = []
        bytes.withUnsafeBytes { raw in
            var p = 0
            while p + 4 <= raw.count {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
                guard p + 4 + length + 8 <= raw.count else { break }
                let id = Array(raw[(p + 4)..<(p + 4 + length)])
                let bits = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: p + 4 + length, as: UInt64.self))
                out.append((id, Double(bitPattern: bits)))
                p += 4 + length + 8
            }
        }
        return out
    }

    /// The vector as a JSON array of float32 values, each written as the shortest decimal
    /// that reads back as that float32 (`DESIGN.md` §5).
    static func appendJSON(_ v: [Double], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, x) in v.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            let f = Float(x)
            // Not reachable with λ > 0; a JSON reader must never meet nan or inf.
            out.append(contentsOf: (f.isFinite ? f.description : "0").utf8)
        }
        out.append(UInt8(ascii: "]"))
    }
}
