/// The topology the tests of input keyed any way run (driver and real services): per-user
/// counts and sums, each user's last items, sessions per user closed into a per-user tally,
/// and a count per item (re-keyed by a node, as partials) — state that is the same whatever
/// order a user's records arrive in.
public func keyedAnyWayTopology(application: String, topic: String, namespace: String? = nil) -> String {
    """
    application: \(application)
    \(namespace.map { "namespace: \($0)" } ?? "")
    source: {topic: \(topic), key: user_id, timestamp: ts}
    nodes:
      - name: per_user
        aggregate: {group_by: [user_id], sum: [price]}
        to_redis: {type: hash, key: "user:{user_id}"}
      - name: last_items
        recent: {group_by: [user_id], field: item_id, size: 3}
        to_redis: {type: string, key: "user:{user_id}:last", value: recent}
      - name: sessions
        session: {group_by: [user_id], gap: 10m, grace: 1d}
        to_redis: {type: hash, key: "session:{session_id}"}
      - name: closed
        input: sessions
        aggregate: {group_by: [user_id], sum: [events]}
        to_redis: {type: hash, key: "user:{user_id}:closed"}
      - name: per_item
        aggregate: {group_by: [item_id]}
        to_redis: {type: hash, key: "item:{item_id}"}
    """
}
