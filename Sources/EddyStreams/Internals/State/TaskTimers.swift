/// A task's stream time and event-time timers. Stream time is the largest event time the
/// task has seen; a timer fires once stream time passes it, in (time, node, key) order, never
/// on the wall clock. Both are state: they live in the task's timer store (its own column
/// family and changelog, written in the same commit as every other store), so a restore, a
/// move to another process or a replay fires the same timers at the same event times.
///
/// Store keys: `[0]` → stream time (Int64, little-endian); `[1] time node key` → `[1]`, a
/// pending timer (time as big-endian with the sign bit flipped, so keys sort by time; node
/// as UInt16 big-endian).
final class TaskTimers {
    struct Timer: Comparable, Hashable {
        let time: Int64
        let node: Int
        let key: [UInt8]

        static func < (a: Timer, b: Timer) -> Bool {
            if a.time != b.time { return a.time < b.time }
            if a.node != b.node { return a.node < b.node }
            return a.key.lexicographicallyPrecedes(b.key)
        }
    }

    let store: KeyValueStore
    /// Stream time as the store holds it (.min: never stored).
    private(set) var storedStreamTime: Int64 = .min
    /// Pending timers; `heap` may also hold cancelled ones, which `pending` does not.
    private var pending = Set<Timer>()
    private var heap = MinHeap<Timer>()
    /// Changes since the last commit, written to the store at the next one: a timer set
    /// and cancelled in between (a session extended by each of its records) costs nothing.
    private var added = Set<Timer>()
    private var removed = Set<Timer>()

    private static let streamTimeKey: [UInt8] = [0]

    /// Loads stream time and the pending timers from the store (after its restore).
    init(store: KeyValueStore) {
        self.store = store
        if let stored = try? store.get(Self.streamTimeKey), let time = decodeOffset(stored) { storedStreamTime = time }
        for (key, _) in store.range(from: [1], to: [2]) {
            guard let timer = Self.timer(fromKey: key) else { continue }
            pending.insert(timer)
            heap.push(timer)
        }
    }

    /// Whether a timer is due: `streamTime` has passed the earliest pending one.
    @inline(__always)
    func hasDue(at streamTime: Int64) -> Bool { heap.min.map { $0.time < streamTime } ?? false }

    func schedule(node: Int, key: [UInt8], at time: Int64) {
        let timer = Timer(time: time, node: node, key: key)
        guard pending.insert(timer).inserted else { return }
        heap.push(timer)
        if removed.remove(timer) == nil { added.insert(timer) }
        // Cancelled entries leave the heap when they surface; rebuild it when they dominate.
        if heap.count > 2 * pending.count + 1_024 { heap = MinHeap(pending) }
    }

    /// The keys of `node`'s pending timers (a scan of them all: for an operator's start).
    func pendingKeys(node: Int) -> [[UInt8]] { pending.filter { $0.node == node }.map(\.key) }

    func cancel(node: Int, key: [UInt8], at time: Int64) {
        remove(Timer(time: time, node: node, key: key))
    }

    private func remove(_ timer: Timer) {
        guard pending.remove(timer) != nil else { return }
        if added.remove(timer) == nil { removed.insert(timer) }
    }

    /// Removes and returns the earliest timer `streamTime` has passed, if any.
    func popDue(at streamTime: Int64) -> Timer? {
        while let top = heap.min, top.time < streamTime {
            heap.popMin()
            if pending.contains(top) {
                remove(top)
                return top
            }
        }
        return nil
    }

    var pendingCount: Int { pending.count }

    /// Writes the timers set and removed since the last commit, and stream time if it
    /// moved, into the store. (Once per attempt is enough: a failed attempt leaves the
    /// store's changes pending for the next.)
    func prepareCommit(streamTime: Int64) {
        // Not empty: an empty changelog value reads as a delete.
        for timer in added { store.put(Self.storeKey(timer), [1]) }
        for timer in removed { store.delete(Self.storeKey(timer)) }
        added.removeAll(keepingCapacity: true)
        removed.removeAll(keepingCapacity: true)
        guard streamTime != storedStreamTime else { return }
        store.put(Self.streamTimeKey, encodeOffset(streamTime))
        storedStreamTime = streamTime
    }

    private static func storeKey(_ timer: Timer) -> [UInt8] {
        var key: [UInt8] = [1]
        key.reserveCapacity(11 + timer.key.count)
        withUnsafeBytes(of: (UInt64(bitPattern: timer.time) ^ (1 << 63)).bigEndian) { key.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(timer.node).bigEndian) { key.append(contentsOf: $0) }
        key.append(contentsOf: timer.key)
        return key
    }

    private static func timer(fromKey key: [UInt8]) -> Timer? {
        guard key.count >= 11, key[0] == 1 else { return nil }
        return key.withUnsafeBytes { raw in
            let time = Int64(bitPattern: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 1, as: UInt64.self)) ^ (1 << 63))
            let node = Int(UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 9, as: UInt16.self)))
            return Timer(time: time, node: node, key: Array(key[11...]))
        }
    }
}
