/// The rule of a node's `state_ttl` (`Topology.Node.stateTTLMs`), written plainly: per
/// source partition, events in order; stream time is the largest event time so far; a
/// group's last touch is the step (TTL/8) of the stream time at its last event; after each
/// event, every group whose last step's end + TTL is behind stream time leaves, and starts
/// afresh if it comes back.
public struct StateTTLReference {
    public let ttlMs: Int64
    public var stepMs: Int64 { max(1, ttlMs / 8) }

    public init(ttlMs: Int64) { self.ttlMs = ttlMs }

    public func step(_ t: Int64) -> Int64 { t >= 0 ? t / stepMs : (t - stepMs + 1) / stepMs }
    /// When a step's groups are due: a timer at its end + TTL, fired once stream time is past it.
    public func due(_ step: Int64) -> Int64 { (step + 1) * stepMs + ttlMs }

    /// Of `events` (in the order each partition has them), the ones the state holds at the
    /// end: for every group (`group`: an event's group, nil when the node does not see the
    /// event, which still moves stream time) its events since it last left; none for a
    /// group gone at the end. `partition`: an event's source partition.
    public func kept<Event>(_ events: [Event], partition: (Event) -> Int, time: (Event) -> Int64, group: (Event) -> String?) -> [Event] {
        var streamTime: [Int: Int64] = [:]
        var lastStep: [Int: [String: Int64]] = [:]  // partition → group → its last touch's step
        var byStep: [Int: [Int64: Set<String>]] = [:]  // partition → step → groups last touched in it
        var since: [String: Int] = [:]  // group → index of its first event since it last left
        for (i, e) in events.enumerated() {
            let p = partition(e)
            let now = max(streamTime[p] ?? .min, time(e))
            streamTime[p] = now
            if let g = group(e) {
                let s = step(now)
                if let old = lastStep[p]?[g] {
                    byStep[p]![old]!.remove(g)
                } else {
                    since[g] = i
                }
                lastStep[p, default: [:]][g] = s
                byStep[p, default: [:]][s, default: []].insert(g)
            }
            while let s = byStep[p]?.keys.min(), due(s) < now {
                for g in byStep[p]![s]! {
                    lastStep[p]![g] = nil
                    since[g] = nil
                }
                byStep[p]![s] = nil
            }
        }
        return events.enumerated().filter { i, e in group(e).flatMap { since[$0] }.map { i >= $0 } ?? false }.map(\.element)
    }
}
