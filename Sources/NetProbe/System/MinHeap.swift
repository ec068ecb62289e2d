/// A binary min-heap: the event loop's timers, O(log n) per insert and pop.
///
/// The sifts compare elements in place, through the buffer, with `Element`'s own `<`
/// (specialized and inlined): a timer holds a reference to its target, and a comparison
/// that copied elements would retain and release it at every level, which at 10,000
/// targets a second was a third of the probe thread's time.
struct MinHeap<Element: Comparable> {
  private var items: [Element] = []

  init() {}

  var isEmpty: Bool { items.isEmpty }
  var count: Int { items.count }
  var min: Element? { items.first }

  mutating func insert(_ element: Element) {
    items.append(element)
    items.withUnsafeMutableBufferPointer { heap in
      var child = heap.count - 1
      while child > 0 {
        let parent = (child - 1) / 2
        guard heap[child] < heap[parent] else { break }
        heap.swapAt(child, parent)
        child = parent
      }
    }
  }

  @discardableResult
  mutating func popMin() -> Element? {
    guard !items.isEmpty else { return nil }
    items.swapAt(0, items.count - 1)
    let smallest = items.removeLast()
    items.withUnsafeMutableBufferPointer { heap in
      var parent = 0
      while true {
        let left = 2 * parent + 1
        let right = left + 1
        var candidate = parent
        if left < heap.count && heap[left] < heap[candidate] { candidate = left }
        if right < heap.count && heap[right] < heap[candidate] { candidate = right }
        if candidate == parent { break }
        heap.swapAt(parent, candidate)
        parent = candidate
      }
    }
    return smallest
  }

  mutating func removeAll() { items.removeAll() }
}
