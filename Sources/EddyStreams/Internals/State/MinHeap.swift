/// A binary min-heap: `TaskTimers`' pending timers, `ModelOperator`'s waiting records.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    init() {}

    init<S: Sequence>(_ elements: S) where S.Element == Element {
        items = elements.sorted()  // a sorted array is a heap
    }

    var count: Int { items.count }
    var min: Element? { items.first }

    mutating func push(_ element: Element) {
        items.append(element)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    @discardableResult
    mutating func popMin() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let min = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count, items[l] < items[smallest] { smallest = l }
            if r < items.count, items[r] < items[smallest] { smallest = r }
            guard smallest != i else { return min }
            items.swapAt(i, smallest)
            i = smallest
        }
    }

    mutating func removeAll() { items.removeAll() }
}
