/// A click for test-driver tests on two partitions: user `u<n>` on partition n mod 2, so
/// each partition's stream time is known to the test.
public struct TestClick {
    public let user: Int, item: String, type: String, ts: Int64

    public init(user: Int, item: String, type: String, ts: Int64) {
        (self.user, self.item, self.type, self.ts) = (user, item, type, ts)
    }

    public var json: String { #"{"user_id":"u\#(user)","item_id":"\#(item)","event_type":"\#(type)","ts":\#(ts)}"# }
    public var partition: Int32 { Int32(user % 2) }
    public var recs: RecsReference.Event { .init(user: "u\(user)", item: item, type: type, ts: ts) }
    public var model: ModelReference.Event { .init(user: "u\(user)", item: item, type: type, ts: ts) }

    /// The stream time after a re-key once all of `clicks` are in: the least over the two
    /// partitions of their latest time.
    public static func watermark(_ clicks: [TestClick]) -> Int64 {
        [Int32(0), 1].map { p in clicks.filter { $0.partition == p }.map(\.ts).max() ?? .min }.min()!
    }
}
