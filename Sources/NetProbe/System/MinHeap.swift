/// A binary min-heap: the event loop's timers, O(log n) per insert and pop.
struct MinHeap<Element> {
  private var items: [Element] = []
  private let less: (Element, Element) -> Bool

  init(by less: @escaping (Element, Element) -> Bool) { self.less = less }

  var isEmpty: Bool { items.isEmpty }
  var count: Int { items.count }
  var min: Element? { items.first }

  mutating func insert(_ element: Element) {
    items.append(element)
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard less(items[child], items[parent]) else { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  @discardableResult
  mutating func popMin() -> Element? {
    guard !items.isEmpty else { return nil }
    items.swapAt(0, items.count - 1)
    let smallest = items.removeLast()
    var parent = 0
    while true {
      let left = 2 * parent + 1
      let right = left + 1
      var candidate = parent
      if left < items.count && less(items[left], items[candidate]) { candidate = left }
      if right < items.count && less(items[right], items[candidate]) { candidate = right }
      if candidate == parent { break }
      items.swapAt(parent, candidate)
      parent = candidate
    }
    return smallest
  }

  mutating func removeAll() { items.removeAll() }
}
