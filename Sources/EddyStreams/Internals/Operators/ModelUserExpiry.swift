/// A `model` node's `state_ttl`: a user whose last applied record is more than the TTL
/// older than the record being applied leaves the model (its vector, its history, its part
/// of the users' Gram, its Redis row), so the model's state is bounded by the users active
/// lately, as the per-user aggregates' is (`IdleExpiry`).
///
/// The clock is the model's own: the time of the record it applies, in the apply order
/// (`ModelOperator`), so a replay, a restart or another interleaving of the upstream
/// partitions expires the same users at the same point of that order, and the factors
/// stay bit for bit the same. (Stream-time steps, as `IdleExpiry` takes, would expire at
/// points that depend on how the applied records were batched into timers.)
///
/// Each user's last time is in the store, `t u <user>` (8 bytes, little-endian); in memory
/// the same times and a heap of them in (time, user) order, whose entries for users touched
/// since are skipped when they come up, and rebuilt when they outnumber the users twice
/// (plus 1024). Kept only while the node has a TTL: without one the times are deleted,
/// and a model given a TTL over users without times starts each one's clock at the last
/// record applied, so they leave at most the TTL after the change.
final class ModelUserExpiry {
    let ttlMs: Int64
    private let store: KeyValueStore
    private var last: [GroupKey: Int64] = [:]
    private var order = MinHeap<Entry>()

    private struct Entry: Comparable {
        let time: Int64
        let user: [UInt8]

        static func < (a: Entry, b: Entry) -> Bool {
            a.time != b.time ? a.time < b.time : a.user.lexicographicallyPrecedes(b.user)
        }
    }

    private static let mark: [UInt8] = [0x74, 0x75]  // "t u"

    init(ttlMs: Int64, store: KeyValueStore) {
        self.ttlMs = ttlMs
        self.store = store
    }

    private static func stored(in store: KeyValueStore) -> [(key: [UInt8], value: [UInt8])] {
        store.range(from: mark, to: [mark[0], mark[1] + 1])
    }

    /// Reads the users' times (again, after a restore). `users`: the model's users, for a
    /// store without times; `appliedTime`: the time of the last record applied.
    func load(appliedTime: Int64, users: () -> [[UInt8]]) {
        last.removeAll()
        for (key, value) in Self.stored(in: store) where value.count == 8 {
            last[GroupKey(bytes: Array(key[2...]))] = value.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
        }
        if last.isEmpty && appliedTime != .min {
            for user in users() {
                last[GroupKey(bytes: user)] = appliedTime
                store.put(Self.mark + user, withUnsafeBytes(of: appliedTime.littleEndian, Array.init))
            }
        }
        rebuildOrder()
    }

    /// A model without a TTL keeps no times: those of a TTL it had are stale (its users
    /// went on without them) and go.
    static func deleteTimes(in store: KeyValueStore) {
        for (key, _) in stored(in: store) { store.delete(key) }
    }

    private func rebuildOrder() {
        order = MinHeap(last.map { Entry(time: $0.value, user: $0.key.bytes) })
    }

    /// `user`'s record of `time` was applied.
    func applied(_ user: [UInt8], at time: Int64) {
        let k = GroupKey(bytes: user)
        guard last.updateValue(time, forKey: k) != time else { return }
        store.put(Self.mark + user, withUnsafeBytes(of: time.littleEndian, Array.init))
        order.push(Entry(time: time, user: user))
        if order.count > 2 * last.count + 1024 { rebuildOrder() }
    }

    /// The users idle for more than the TTL before a record of `time`, in (time, user) order:
    /// forgotten here (their time's key deleted); the caller removes the rest of their state.
    func idle(before time: Int64) -> [[UInt8]] {
        let (cutoff, overflow) = time.subtractingReportingOverflow(ttlMs)
        guard !overflow else { return [] }
        var users: [[UInt8]] = []
        while let e = order.min, e.time < cutoff {
            order.popMin()
            let k = GroupKey(bytes: e.user)
            guard last[k] == e.time else { continue }  // applied again since
            last[k] = nil
            store.delete(Self.mark + e.user)
            users.append(e.user)
        }
        return users
    }
}
