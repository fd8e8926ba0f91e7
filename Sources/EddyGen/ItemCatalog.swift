import EddyKafka

/// The item catalog behind a generated clickstream, for global tables and stream-table
/// joins: one row per item, keyed by the item id as the events carry it in `item_id`
/// (`i<n>`, see `ClickstreamGenerator.Event.appendJSON`), its value a JSON object
/// `{"item_id":"i<n>","category":"c<k>","price":12.34,"in_stock":true,"margin":0.27,"updated_at":<ms>}`
/// (the id and time make the rows a source `Topologies/catalog.yaml` can read; `updated_at`
/// is the generator's start time).
///
/// The category is the generator's (`ClickstreamGenerator.category(of:)`) and the price the
/// one the item's carts and purchases carry; `in_stock` (90% true) and `margin` (0.05–0.45)
/// are drawn from the seed per item. The same options give the same catalog.
public struct ItemCatalog: Sendable {
    public struct Row: Equatable, Sendable {
        public var item: Int
        public var category: Int
        public var priceCents: Int
        public var inStock: Bool
        /// In hundredths: 5...45.
        public var marginPercent: Int
        /// Epoch ms: the generator's start time.
        public var updatedAt: Int64

        public var key: String { ItemCatalog.key(of: item) }

        /// The row's value: one JSON object.
        public var json: String {
            func hundredths(_ v: Int) -> String { "\(v / 100).\(v % 100 < 10 ? "0" : "")\(v % 100)" }
            return #"{"item_id":"\#(key)","category":"c\#(category)","price":\#(hundredths(priceCents)),"in_stock":\#(inStock),"margin":\#(hundredths(marginPercent)),"updated_at":\#(updatedAt)}"#
        }
    }

    public let options: ClickstreamGenerator.Options

    public init(_ options: ClickstreamGenerator.Options) {
        precondition(options.items > 0 && options.categories > 0, "items and categories must be positive")
        self.options = options
    }

    /// The record key of `item`'s row: the events' `item_id`.
    public static func key(of item: Int) -> String { "i\(item)" }

    public func row(of item: Int) -> Row {
        Row(item: item,
            category: ClickstreamGenerator.category(of: item, options),
            priceCents: ClickstreamGenerator.priceCents(of: item, options),
            inStock: mix(options.seed ^ 0x5706C, item) % 10 != 0,
            marginPercent: 5 + Int(mix(options.seed ^ 0x3A6613, item) % 41),
            updatedAt: options.startMillis)
    }

    /// Every item's row, item 0 first.
    public var rows: [Row] { (0..<options.items).map(row(of:)) }

    /// Writes every row to `topic`, created compacted with `partitions` if it does not
    /// exist, and waits until all are acknowledged. Returns the number of rows.
    @discardableResult
    public func write(topic: String, partitions: Int, kafka: KafkaConfig) throws -> Int {
        let producer = try BulkTopicProducer.make(topic: topic, partitions: partitions,
                                                  configs: ["cleanup.policy": "compact"], kafka: kafka)
        for item in 0..<options.items {
            let row = row(of: item)
            try producer.send(topic: topic, key: Array(row.key.utf8), value: Array(row.json.utf8))
        }
        try producer.flush(timeoutMs: 120_000)
        return options.items
    }
}
