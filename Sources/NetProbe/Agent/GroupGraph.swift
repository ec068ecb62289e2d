/// A multicast group's reception over its history, drawn as inline SVG: the smoke graph's
/// idea for a stream, where the question is "did every packet come, at the rate it should?".
///
/// The history's seconds, oldest first, are cut into consecutive time slots. Per slot a blue
/// bar is the packets per second received; the sequence numbers lost in it are stacked on
/// top as a red bar (so received plus lost reaches what was sent) and marked with a red
/// downward triangle above the plot — colour and shape, so loss reads without colour too.
/// A dashed green line is `expected_rate` when configured. Seconds before the join are
/// shaded grey: unknown, not silent.
///
/// Pure: seconds in, geometry and text out, so tests can check the drawing by numbers.
struct GroupGraph {
  /// Consecutive seconds drawn as one column.
  struct Slot: Equatable {
    /// Index of its first second in the history.
    var first: Int
    var seconds: Int
    /// Seconds of the slot the history knows (after the join).
    var known: Int
    var packets: UInt64
    var lost: UInt64
    var gaps: UInt64
    /// The longest silence that ended in the slot, in seconds.
    var longestSilence: Double

    /// Packets per second received over the slot's known seconds; nil when none is known.
    var rate: Double? { known == 0 ? nil : Double(packets) / Double(known) }
    /// Lost numbers per second, on the same scale as `rate`.
    var lostRate: Double? { known == 0 ? nil : Double(lost) / Double(known) }
  }

  /// The canvas: the smoke graph's sizes, so the two kinds of graph line up on the page.
  typealias Size = SmokeGraph.Size

  static let receivedColour = "#4a78b5"
  static let lostColour = "#d00000"
  static let expectedColour = "#1a8a1a"

  let slots: [Slot]
  let size: Size
  /// The Unix second of the history's last entry: the graph's right edge is its end.
  let end: Int64
  /// Seconds the graph spans (the history's length, whether or not known).
  let span: Int
  let expectedRate: Double?
  /// The rate at the top of the plot: a round number above the highest bar and the
  /// expected rate.
  let axisTop: Double
  let ticks: [Double]

  /// - Parameter slotCount: the most columns; fewer when the history has fewer seconds.
  init(history: [ReceptionHistory.Second?], end: Int64, expectedRate: Double?, slotCount: Int, size: Size) {
    slots = Self.slots(history, count: slotCount)
    self.size = size
    self.end = end
    span = history.isEmpty ? ReceptionHistory.capacity : history.count
    self.expectedRate = expectedRate
    let highest = slots.compactMap { slot in slot.rate.map { $0 + (slot.lostRate ?? 0) } }.max() ?? 0
    (axisTop, ticks) = SmokeGraph.axis(max(highest, expectedRate ?? 0, 1))
  }

  /// Cuts `history` into `count` slots (fewer when it is shorter) whose sizes differ by at
  /// most one, in order.
  static func slots(_ history: [ReceptionHistory.Second?], count: Int) -> [Slot] {
    let total = history.count
    let columns = min(max(count, 1), total)
    guard columns > 0 else { return [] }
    return (0..<columns).map { column in
      let start = column * total / columns
      let end = (column + 1) * total / columns
      var slot = Slot(first: start, seconds: end - start, known: 0, packets: 0, lost: 0, gaps: 0, longestSilence: 0)
      for second in history[start..<end] {
        guard let second else { continue }
        slot.known += 1
        slot.packets += UInt64(second.packets)
        slot.lost += UInt64(second.lost)
        slot.gaps += UInt64(second.gaps)
        slot.longestSilence = max(slot.longestSilence, Double(second.longestSilence))
      }
      return slot
    }
  }

  // MARK: Geometry

  /// The left edge of slot `index`.
  func x(slot index: Int) -> Double {
    size.left + size.plotWidth * Double(index) / Double(max(slots.count, 1))
  }

  /// The vertical position of a rate in packets/s (clamped to the plot).
  func y(_ rate: Double) -> Double {
    size.top + size.plotHeight * (1 - min(max(rate / axisTop, 0), 1))
  }

  typealias Rect = SmokeGraph.Rect

  /// One bar per slot that received anything.
  var receivedBars: [Rect] {
    slots.indices.compactMap { index in
      guard let rate = slots[index].rate, rate > 0 else { return nil }
      return bar(index, from: 0, to: rate)
    }
  }

  /// One bar per slot with loss, stacked on its received bar.
  var lostBars: [Rect] {
    slots.indices.compactMap { index in
      guard slots[index].lost > 0, let rate = slots[index].rate, let lost = slots[index].lostRate else { return nil }
      return bar(index, from: rate, to: rate + lost)
    }
  }

  /// Slots before the join: nothing known.
  var unknownRects: [Rect] {
    slots.indices.compactMap { index in
      guard slots[index].known == 0 else { return nil }
      return Rect(x: x(slot: index), y: size.top, width: x(slot: index + 1) - x(slot: index), height: size.plotHeight)
    }
  }

  /// The indices of the slots with loss, each marked with a triangle.
  var lossSlots: [Int] { slots.indices.filter { slots[$0].lost > 0 } }

  /// The Unix second a slot begins at.
  func startSecond(ofSlot index: Int) -> Int64 {
    end - Int64(span) + 1 + Int64(slots[index].first)
  }

  private func bar(_ index: Int, from low: Double, to high: Double) -> Rect {
    let left = x(slot: index)
    let width = x(slot: index + 1) - left
    // A gap between bars keeps neighbouring columns apart where they are wide enough.
    let inset = width >= 4 ? 0.5 : 0
    let top = y(high)
    return Rect(x: left + inset, y: top, width: width - 2 * inset, height: max(y(low) - top, 0.5))
  }

  /// A downward triangle centred over slot `index`, its tip on the plot's top edge.
  private func triangle(_ index: Int) -> String {
    let centre = (x(slot: index) + x(slot: index + 1)) / 2
    let half = size.axes ? 4.0 : 2.5
    let height = size.axes ? 7.0 : 4.0
    return
      "M\(Self.number(centre - half)) \(Self.number(size.top))h\(Self.number(2 * half))l-\(Self.number(half)) \(Self.number(height))z"
  }

  // MARK: Drawing

  /// The SVG element; `title` is escaped here (it comes from the configuration).
  func svg(title: String) -> String {
    let w = Self.number(size.width)
    let h = Self.number(size.height)
    var out =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"group-graph\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\">"
    out += "<title>\(HTML.escape(title))</title>"
    out +=
      "<rect x=\"\(Self.number(size.left))\" y=\"\(Self.number(size.top))\" width=\"\(Self.number(size.plotWidth))\" height=\"\(Self.number(size.plotHeight))\" fill=\"#fff\" stroke=\"#999\" stroke-width=\".5\"/>"
    let unknown = unknownRects
    if !unknown.isEmpty { out += "<path class=\"unknown\" fill=\"#e4e4e4\" d=\"\(Self.path(unknown))\"/>" }
    if size.axes { out += grid() }
    let received = receivedBars
    if !received.isEmpty { out += "<path class=\"received\" fill=\"\(Self.receivedColour)\" d=\"\(Self.path(received))\"/>" }
    let lost = lostBars
    if !lost.isEmpty { out += "<path class=\"lost\" fill=\"\(Self.lostColour)\" fill-opacity=\".6\" d=\"\(Self.path(lost))\"/>" }
    if let expectedRate {
      out +=
        "<path class=\"expected\" stroke=\"\(Self.expectedColour)\" stroke-width=\"\(size.axes ? "1.5" : "1")\" stroke-dasharray=\"\(size.axes ? "6 3" : "3 2")\" fill=\"none\" d=\"M\(Self.number(size.left)) \(Self.number(y(expectedRate)))h\(Self.number(size.plotWidth))\"/>"
    }
    for index in lossSlots { out += lossMarker(index) }
    if size.axes { out += labels() }
    return out + "</svg>"
  }

  /// The triangle of a slot with loss; on the large graph with what happened as its
  /// tooltip, and on both the slot and its start time as data, for scripts and tests.
  private func lossMarker(_ index: Int) -> String {
    let slot = slots[index]
    var out =
      "<path class=\"loss\" data-slot=\"\(index)\" data-start=\"\(startSecond(ofSlot: index))\" data-lost=\"\(slot.lost)\" fill=\"\(Self.lostColour)\" d=\"\(triangle(index))\">"
    if size.axes {
      let from = Double(span - slot.first)
      let to = Double(span - slot.first - slot.seconds)
      var text = "−\(StatusFormat.age(from)) to −\(StatusFormat.age(to)): \(slot.lost) lost in \(slot.gaps) "
      text += slot.gaps == 1 ? "gap" : "gaps"
      text += ", \(StatusFormat.number(slot.rate ?? 0))/s received"
      if slot.longestSilence > 0 { text += ", longest silence \(Self.silence(slot.longestSilence))" }
      out += "<title>\(HTML.escape(text))</title>"
    }
    return out + "</path>"
  }

  private var frame: GraphFrame { GraphFrame(size: size, ticks: ticks, y: y) }

  private func grid() -> String { frame.grid() }

  /// The packets/s axis on the left, the time axis (seconds or minutes ago) below.
  private func labels() -> String {
    frame.labels(tickText: StatusFormat.number, span: Double(span), title: "packets/s")
  }

  private static func path(_ rects: [Rect]) -> String { GraphFrame.path(rects) }

  static func number(_ value: Double) -> String { SmokeGraph.number(value) }

  /// A silence between packets: "100 ms" below a second, "3.1 s" above.
  static func silence(_ seconds: Double) -> String {
    seconds < 1 ? StatusFormat.milliseconds(seconds) : StatusFormat.fixed(seconds, decimals: 1) + " s"
  }
}
