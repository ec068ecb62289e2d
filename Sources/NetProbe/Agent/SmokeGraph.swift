@preconcurrency import Glibc

/// SmokePing's "smoke" picture of one target's window, drawn as inline SVG.
///
/// The window's probes, oldest first, are cut into consecutive time slots. Per slot the
/// spread of its RTTs is drawn as shaded bands (min–max lightest, then the 10th–90th and the
/// 25th–75th percentiles darker, so dense smoke means a steady RTT and tall thin smoke a
/// jittery one), the median as a line, and the median's colour says the slot's loss, with
/// SmokePing's palette from green (none) through blues and violets to red (most). A slot
/// where every probe was lost has no median: it is shaded pale red from top to bottom.
///
/// The window keeps outcomes in order but not their times, so the time axis counts back
/// from now by the probe interval; that is exact while the target is probed on schedule.
/// Pure: outcomes in, geometry and text out, so tests can check the drawing by numbers.
struct SmokeGraph {
  /// Consecutive probes drawn as one column.
  struct Slot: Equatable {
    /// Index of its first probe in the window.
    var first: Int
    var count: Int
    /// Answered probes' RTTs in seconds, ascending.
    var rtts: [Double]

    var lost: Int { count - rtts.count }
    var lossRatio: Double { count == 0 ? 0 : Double(lost) / Double(count) }
    var median: Double? { TargetStatus.median(of: rtts.map(Float.init)) }

    /// The nearest-rank quantile of the answered RTTs; nil when none answered.
    func quantile(_ p: Double) -> Double? {
      guard !rtts.isEmpty else { return nil }
      let rank = Int((p * Double(rtts.count - 1)).rounded())
      return rtts[min(max(rank, 0), rtts.count - 1)]
    }
  }

  /// The canvas and the plot's margins inside it, in pixels.
  struct Size: Equatable {
    var width: Double
    var height: Double
    var left: Double
    var right: Double
    var top: Double
    var bottom: Double
    /// Axes, ticks and labels; the table's small graphs have none.
    var axes: Bool

    static let large = Size(width: 720, height: 220, left: 58, right: 14, top: 10, bottom: 26, axes: true)
    static let small = Size(width: 120, height: 26, left: 1, right: 1, top: 1, bottom: 1, axes: false)

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }
  }

  /// The shaded bands, widest first, as quantile pairs with their opacity.
  static let bands: [(low: Double, high: Double, opacity: Double)] = [(0, 1, 0.16), (0.1, 0.9, 0.22), (0.25, 0.75, 0.32)]

  /// SmokePing's loss colours, by the share of a slot's probes lost (upper bounds).
  static let lossPalette: [(upTo: Double, colour: String, label: String)] = [
    (0, "#1fb800", "0"), (0.05, "#00b8ff", "≤5%"), (0.10, "#0059ff", "≤10%"), (0.15, "#5e00ff", "≤15%"),
    (0.20, "#7e00ff", "≤20%"), (0.50, "#dd00ff", "≤50%"), (1, "#ff0000", ">50%"),
  ]

  static func lossColour(_ ratio: Double) -> String {
    lossPalette.first { ratio <= $0.upTo + 1e-9 }?.colour ?? "#ff0000"
  }

  let slots: [Slot]
  let size: Size
  /// Seconds between probes, for the time axis.
  let interval: Double
  let probes: Int
  /// The RTT at the top of the plot, in seconds: a round number above the largest RTT.
  let axisTop: Double
  /// The RTT axis' labelled values, in seconds, from 0.
  let ticks: [Double]

  /// - Parameter slotCount: the most columns; fewer when the window has fewer probes.
  init(outcomes: [Float], interval: Double, slotCount: Int, size: Size) {
    slots = Self.slots(outcomes, count: slotCount)
    self.size = size
    self.interval = interval
    probes = outcomes.count
    let highest = slots.compactMap { $0.rtts.last }.max() ?? 0
    (axisTop, ticks) = Self.axis(highest)
  }

  /// Cuts `outcomes` into `count` slots (fewer when there are fewer outcomes) whose sizes
  /// differ by at most one, in order.
  static func slots(_ outcomes: [Float], count: Int) -> [Slot] {
    let total = outcomes.count
    let columns = min(max(count, 1), total)
    guard columns > 0 else { return [] }
    return (0..<columns).map { column in
      let start = column * total / columns
      let end = (column + 1) * total / columns
      let rtts = outcomes[start..<end].filter { !$0.isNaN }.map(Double.init).sorted()
      return Slot(first: start, count: end - start, rtts: rtts)
    }
  }

  /// A round top above `highest` (by 1, 2 or 5 × 10ⁿ steps, four or so of them) and its
  /// ticks. An empty window gets a 1 ms axis.
  static func axis(_ highest: Double) -> (top: Double, ticks: [Double]) {
    let wanted = highest > 0 ? highest * 1.05 : 0.001
    let raw = wanted / 4
    let magnitude = pow(10, (log10(raw)).rounded(.down))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw * 0.999_999 } ?? 10 * magnitude
    let steps = max(1, Int((wanted / step).rounded(.up)))
    return (Double(steps) * step, (0...steps).map { Double($0) * step })
  }

  // MARK: Geometry

  /// The left edge of slot `index`.
  func x(slot index: Int) -> Double {
    size.left + size.plotWidth * Double(index) / Double(max(slots.count, 1))
  }

  /// The vertical position of an RTT in seconds (clamped to the plot).
  func y(_ rtt: Double) -> Double {
    size.top + size.plotHeight * (1 - min(max(rtt / axisTop, 0), 1))
  }

  struct Rect: Equatable {
    var x: Double, y: Double, width: Double, height: Double
  }

  /// The bands drawn: all three on the large graph; min–max and 25–75 % on the table's
  /// small ones, where a third band is too thin to see and 200 rows a page pay for it.
  var bandLevels: [(low: Double, high: Double, opacity: Double)] {
    size.axes ? Self.bands : [Self.bands[0], Self.bands[2]]
  }

  /// Per band (widest first), one rectangle per slot that has answers.
  var bandRects: [[Rect]] {
    bandLevels.map { band in
      slots.indices.compactMap { index in
        let slot = slots[index]
        guard let low = slot.quantile(band.low), let high = slot.quantile(band.high) else { return nil }
        let top = y(high)
        let bottom = y(low)
        // A band of equal RTTs still shows as a hairline.
        return Rect(x: x(slot: index), y: top, width: x(slot: index + 1) - x(slot: index), height: max(bottom - top, 0.5))
      }
    }
  }

  struct Segment: Equatable {
    var x0: Double, x1: Double, y: Double, colour: String
  }

  /// The median of each slot with answers, coloured by the slot's loss.
  var medianSegments: [Segment] {
    slots.indices.compactMap { index in
      guard let median = slots[index].median else { return nil }
      return Segment(x0: x(slot: index), x1: x(slot: index + 1), y: y(median), colour: Self.lossColour(slots[index].lossRatio))
    }
  }

  /// Slots where every probe was lost: shaded pale red over the full height.
  var lostRects: [Rect] {
    slots.indices.compactMap { index in
      guard slots[index].count > 0, slots[index].rtts.isEmpty else { return nil }
      return Rect(x: x(slot: index), y: size.top, width: x(slot: index + 1) - x(slot: index), height: size.plotHeight)
    }
  }

  // MARK: Drawing

  /// The SVG element; `title` is escaped here (it comes from the configuration).
  func svg(title: String) -> String {
    let w = Self.number(size.width)
    let h = Self.number(size.height)
    var out =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"smoke\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\">"
    out += "<title>\(HTML.escape(title))</title>"
    out +=
      "<rect x=\"\(Self.number(size.left))\" y=\"\(Self.number(size.top))\" width=\"\(Self.number(size.plotWidth))\" height=\"\(Self.number(size.plotHeight))\" fill=\"#fff\" stroke=\"#999\" stroke-width=\".5\"/>"
    if size.axes { out += grid() }
    let lost = lostRects
    if !lost.isEmpty { out += "<path class=\"lost\" fill=\"#ff0000\" fill-opacity=\".18\" d=\"\(Self.path(lost))\"/>" }
    for (level, rects) in bandRects.enumerated() where !rects.isEmpty {
      out += "<path class=\"band\" fill=\"#333\" fill-opacity=\"\(bandLevels[level].opacity)\" d=\"\(Self.path(rects))\"/>"
    }
    var byColour: [(String, String)] = []
    for segment in medianSegments {
      let piece = "M\(Self.number(segment.x0)) \(Self.number(segment.y))H\(Self.number(segment.x1))"
      if let index = byColour.firstIndex(where: { $0.0 == segment.colour }) {
        byColour[index].1 += piece
      } else {
        byColour.append((segment.colour, piece))
      }
    }
    let width = size.axes ? "2" : "1.5"
    for (colour, d) in byColour {
      out += "<path class=\"median\" stroke=\"\(colour)\" stroke-width=\"\(width)\" fill=\"none\" d=\"\(d)\"/>"
    }
    if size.axes { out += labels() }
    return out + "</svg>"
  }

  private var frame: GraphFrame { GraphFrame(size: size, ticks: ticks, y: y) }

  private func grid() -> String { frame.grid() }

  /// The RTT axis in ms on the left, the time axis (seconds or minutes ago) below.
  private func labels() -> String {
    frame.labels(tickText: StatusFormat.tick, span: Double(probes) * interval, title: "RTT")
  }

  private static func path(_ rects: [Rect]) -> String { GraphFrame.path(rects) }

  /// A coordinate to one decimal, without a trailing ".0": small SVGs for 200 rows a page.
  static func number(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    let sign = tenths < 0 ? "-" : ""
    let magnitude = abs(tenths)
    return magnitude % 10 == 0 ? "\(sign)\(magnitude / 10)" : "\(sign)\(magnitude / 10).\(magnitude % 10)"
  }
}
