/// What the status page's graphs share around their data: horizontal grid lines at the
/// value axis's ticks, the tick values on the left, the time axis below (from the span's
/// start to "now") and the axis's title — so a smoke graph and a group graph read alike.
struct GraphFrame {
  let size: SmokeGraph.Size
  /// The value axis's ticks, the lowest first; the first sits on the plot's bottom edge
  /// and gets no grid line.
  let ticks: [Double]
  /// The vertical position of a value.
  let y: (Double) -> Double

  /// The grid lines as one path; empty when the axis has a single tick.
  func grid() -> String {
    var d = ""
    for tick in ticks.dropFirst() {
      d += "M\(SmokeGraph.number(size.left)) \(SmokeGraph.number(y(tick)))h\(SmokeGraph.number(size.plotWidth))"
    }
    return d.isEmpty ? "" : "<path stroke=\"#ddd\" stroke-width=\".5\" d=\"\(d)\"/>"
  }

  /// The tick values (written by `tickText`), the time axis over `span` seconds in
  /// quarters, and `title` along the value axis.
  func labels(tickText: (Double) -> String, span: Double, title: String) -> String {
    var out = "<g font-family=\"sans-serif\" font-size=\"10\" fill=\"#333\">"
    for tick in ticks {
      out +=
        "<text x=\"\(SmokeGraph.number(size.left - 4))\" y=\"\(SmokeGraph.number(y(tick) + 3))\" text-anchor=\"end\">\(tickText(tick))</text>"
    }
    let baseline = SmokeGraph.number(size.top + size.plotHeight + 14)
    for quarter in 0...4 {
      let fraction = Double(quarter) / 4
      let anchor = quarter == 0 ? "start" : quarter == 4 ? "end" : "middle"
      let text = quarter == 4 ? "now" : "−" + StatusFormat.age(span * (1 - fraction))
      out +=
        "<text x=\"\(SmokeGraph.number(size.left + size.plotWidth * fraction))\" y=\"\(baseline)\" text-anchor=\"\(anchor)\">\(text)</text>"
    }
    let middle = SmokeGraph.number(size.top + size.plotHeight / 2)
    out += "<text x=\"12\" y=\"\(middle)\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(middle))\">\(title)</text>"
    return out + "</g>"
  }

  /// Rectangles as one path's data.
  static func path(_ rects: [SmokeGraph.Rect]) -> String {
    var d = ""
    for rect in rects {
      let (x, y, width, height) = (
        SmokeGraph.number(rect.x), SmokeGraph.number(rect.y), SmokeGraph.number(rect.width), SmokeGraph.number(rect.height)
      )
      d += "M\(x) \(y)h\(width)v\(height)h-\(width)z"
    }
    return d
  }
}
