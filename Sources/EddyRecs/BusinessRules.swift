/// What may be recommended, from the item catalog (`catalog:{id}` hashes, as
/// `Topologies/catalog.yaml` materializes them): only items in stock, a margin floor,
/// categories left out, a cap per category (diversity), and what to do with an item the
/// catalog does not know. Applied to the ranked candidates in order, so the items kept are
/// the best ones that pass.
public struct BusinessRules: Equatable, Sendable {
    public enum UnknownItems: String, Sendable, CaseIterable {
        /// Recommend it as if it passed every rule (the catalog may lag the stream).
        case serve
        /// Leave it out.
        case drop
    }

    public var inStockOnly = false
    /// Items whose margin is below this are left out (an item without a margin passes).
    public var minMargin: Double?
    public var excludedCategories: Set<String> = []
    /// At most this many items of one category in an answer (items without a category are
    /// not capped).
    public var maxPerCategory: Int?
    public var unknownItems = UnknownItems.serve

    public init(inStockOnly: Bool = false, minMargin: Double? = nil, excludedCategories: Set<String> = [], maxPerCategory: Int? = nil,
                unknownItems: UnknownItems = .serve) {
        self.inStockOnly = inStockOnly
        self.minMargin = minMargin
        self.excludedCategories = excludedCategories
        self.maxPerCategory = maxPerCategory
        self.unknownItems = unknownItems
    }

    /// Whether any rule needs the catalog (without one, candidates are taken as ranked).
    public var readsCatalog: Bool {
        inStockOnly || minMargin != nil || !excludedCategories.isEmpty || maxPerCategory != nil || unknownItems == .drop
    }

    /// Whether an item with this catalog row (nil: unknown) may be recommended, before the cap.
    public func admits(_ row: CatalogRow?) -> Bool {
        guard let row else { return unknownItems == .serve }
        if inStockOnly && row.inStock == false { return false }
        if let minMargin, let margin = row.margin, margin < minMargin { return false }
        if let category = row.category, excludedCategories.contains(category) { return false }
        return true
    }
}

/// The catalog fields the rules read of one item.
public struct CatalogRow: Equatable, Sendable {
    public var category: String?
    public var inStock: Bool?
    public var margin: Double?

    public init(category: String? = nil, inStock: Bool? = nil, margin: Double? = nil) {
        self.category = category
        self.inStock = inStock
        self.margin = margin
    }

    /// The hash fields a row is read from, in `init(fields:)` order.
    public static let fieldNames = ["category", "in_stock", "margin"]

    /// From `HMGET catalog:{id} category in_stock margin`; nil when the item has none of them.
    public init?(fields: [String?]) {
        guard fields.count == 3, fields.contains(where: { $0 != nil }) else { return nil }
        category = fields[0]
        inStock = fields[1].flatMap { ["true": true, "1": true, "false": false, "0": false][$0.lowercased()] }
        margin = fields[2].flatMap(Double.init)
    }
}
