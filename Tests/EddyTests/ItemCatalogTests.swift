import EddyGen
import Foundation
import XCTest

/// The catalog checked from the outside: its rows parsed as JSON, against the events the
/// generator writes (their own `item_id`, `category` and `price`), not against the code
/// that builds the rows.
final class ItemCatalogTests: XCTestCase {
    private func options(seed: UInt64 = 42, items: Int = 3_000) -> ClickstreamGenerator.Options {
        var options = ClickstreamGenerator.Options()
        options.seed = seed
        options.users = 2_000
        options.items = items
        return options
    }

    /// key → the row's JSON object, failing on a duplicate key.
    private func parsedRows(_ options: ClickstreamGenerator.Options) throws -> [String: [String: Any]] {
        var rows: [String: [String: Any]] = [:]
        for row in ItemCatalog(options).rows {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(row.json.utf8)) as? [String: Any], row.json)
            XCTAssertNil(rows[row.key], "item \(row.key) has two rows")
            rows[row.key] = object
        }
        return rows
    }

    func testEveryItemHasOneRowWithTheGeneratorsCategory() throws {
        let options = options()
        let rows = try parsedRows(options)
        XCTAssertEqual(Set(rows.keys), Set((0..<options.items).map { "i\($0)" }), "one row per item, keyed as the events' item_id")
        let generator = ClickstreamGenerator(options)
        for item in 0..<options.items {
            let row = try XCTUnwrap(rows["i\(item)"])
            XCTAssertEqual(row["category"] as? String, "c\(generator.category(of: item))", "item \(item)")
            XCTAssertEqual(Set(row.keys), ["item_id", "category", "price", "in_stock", "margin", "updated_at"])
            XCTAssertNotNil(row["in_stock"] as? Bool)
            XCTAssertEqual(row["item_id"] as? String, "i\(item)", "the id the record is keyed by")
            XCTAssertEqual((row["updated_at"] as? NSNumber)?.int64Value, options.startMillis)
            let margin = try XCTUnwrap(row["margin"] as? Double)
            XCTAssert((0.05...0.45).contains(margin), "margin \(margin)")
            XCTAssertGreaterThan(try XCTUnwrap(row["price"] as? Double), 0)
        }
        let inStock = rows.values.filter { $0["in_stock"] as? Bool == true }.count
        XCTAssert((0.8...0.97).contains(Double(inStock) / Double(rows.count)), "\(inStock) of \(rows.count) in stock")
    }

    /// What a join on item_id would see: every event's item has a row, whose category is the
    /// one the event carries, and whose price is the one its carts and purchases carry.
    func testTheEventsAgreeWithTheCatalog() throws {
        let options = options()
        let rows = try parsedRows(options)
        var generator = ClickstreamGenerator(options)
        var priced = 0
        for _ in 0..<20_000 {
            var json: [UInt8] = []
            generator.next().appendJSON(to: &json)
            let event = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
            let itemID = try XCTUnwrap(event["item_id"] as? String)
            let row = try XCTUnwrap(rows[itemID], "no catalog row for \(itemID)")
            XCTAssertEqual(row["category"] as? String, event["category"] as? String, itemID)
            if let price = event["price"] as? Double {
                XCTAssertEqual(row["price"] as? Double, price, itemID)
                priced += 1
            }
        }
        XCTAssertGreaterThan(priced, 0)
    }

    func testSameSeedSameCatalogOtherSeedOtherCatalog() throws {
        let a = ItemCatalog(options()).rows
        XCTAssertEqual(a.map(\.json), ItemCatalog(options()).rows.map(\.json))
        XCTAssertEqual(a.map(\.key), ItemCatalog(options()).rows.map(\.key))
        let other = try parsedRows(options(seed: 43))
        let same = try parsedRows(options())
        let differing = same.filter { key, row in
            row["category"] as? String != other[key]?["category"] as? String || row["margin"] as? Double != other[key]?["margin"] as? Double
        }.count
        XCTAssertGreaterThan(differing, same.count / 2, "another seed gives another catalog")
    }
}
