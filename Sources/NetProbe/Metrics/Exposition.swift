/// Builds the Prometheus text exposition format 0.0.4.
///
/// Collectors add samples in any order; each family's lines are kept together and the
/// families come out sorted by name, each with its `# HELP` and `# TYPE` once, so the output
/// is stable from scrape to scrape (swift-prometheus 2.x's order changes per run, one
/// reason this writer exists; see ARCHITECTURE.md).
public struct Exposition {
  private var bodies: [String: (family: MetricFamily, lines: [UInt8])] = [:]
  /// Text 0.0.4, or the delimited protobuf format (`ProtobufExposition`), which is written
  /// into the same per-family buffers.
  public let format: ExpositionFormat

  /// The content type of what `render` produces in the text format.
  public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

  public init(format: ExpositionFormat = .text) {
    self.format = format
  }

  /// Adds a counter or gauge sample.
  public mutating func add(_ family: MetricFamily, _ labels: LabelSet = .empty, _ value: Double) {
    assert(family.type != .histogram, "\(family.name): use addHistogram")
    assert(Array(labels.names.prefix(family.labels.count)) == family.labels, "\(family.name): labels \(labels.names)")
    if format == .protobuf {
      append(family) { ProtobufExposition.appendSample(family.type, labels, value, to: &$0) }
      return
    }
    append(family) { lines in
      lines += family.name.utf8
      Exposition.appendLabels(labels, extra: nil, to: &lines)
      lines.append(UInt8(ascii: " "))
      Exposition.appendValue(value, to: &lines)
      lines.append(UInt8(ascii: "\n"))
    }
  }

  /// Adds a histogram series: its cumulative buckets, `+Inf`, `_sum` and `_count`.
  public mutating func addHistogram(_ family: MetricFamily, _ labels: LabelSet = .empty, _ histogram: HistogramSnapshot) {
    assert(family.type == .histogram, "\(family.name) is not a histogram")
    assert(Array(labels.names.prefix(family.labels.count)) == family.labels, "\(family.name): labels \(labels.names)")
    if format == .protobuf {
      append(family) { ProtobufExposition.appendHistogram(labels, histogram, to: &$0) }
      return
    }
    append(family) { lines in
      var cumulative: UInt64 = 0
      for (bound, count) in zip(histogram.upperBounds, histogram.bucketCounts) {
        cumulative += count
        lines += family.name.utf8
        lines += "_bucket".utf8
        Exposition.appendLabels(labels, extra: Exposition.formatValue(bound), to: &lines)
        lines.append(UInt8(ascii: " "))
        Exposition.appendValue(Double(cumulative), to: &lines)
        lines.append(UInt8(ascii: "\n"))
      }
      lines += family.name.utf8
      lines += "_bucket".utf8
      Exposition.appendLabels(labels, extra: "+Inf", to: &lines)
      lines.append(UInt8(ascii: " "))
      Exposition.appendValue(Double(histogram.count), to: &lines)
      lines.append(UInt8(ascii: "\n"))
      for (suffix, value) in [("_sum", histogram.sum), ("_count", Double(histogram.count))] {
        lines += family.name.utf8
        lines += suffix.utf8
        Exposition.appendLabels(labels, extra: nil, to: &lines)
        lines.append(UInt8(ascii: " "))
        Exposition.appendValue(value, to: &lines)
        lines.append(UInt8(ascii: "\n"))
      }
    }
  }

  /// The whole exposition in one buffer, families sorted by name (for pushes).
  public consuming func render() -> [UInt8] {
    let parts = renderParts()
    var output: [UInt8] = []
    output.reserveCapacity(parts.reduce(0) { $0 + $1.count })
    for part in parts { output += part }
    return output
  }

  /// The exposition as parts to write in order, families sorted by name: each family's
  /// `# HELP`/`# TYPE` lines, then its sample lines — the buffer the collectors filled,
  /// moved, not copied, so a 38 MB exposition exists once in memory while it is sent.
  public consuming func renderParts() -> [[UInt8]] {
    var parts: [[UInt8]] = []
    parts.reserveCapacity(bodies.count * 2)
    for name in bodies.keys.sorted() {
      guard let (family, lines) = bodies.removeValue(forKey: name) else { continue }
      if format == .protobuf {
        parts.append(ProtobufExposition.familyHead(family, metricBytes: lines.count))
        parts.append(lines)
        continue
      }
      var head = Array("# HELP \(family.name) ".utf8)
      for byte in family.help.utf8 {
        switch byte {
        case UInt8(ascii: "\\"): head += #"\\"#.utf8
        case UInt8(ascii: "\n"): head += #"\n"#.utf8
        default: head.append(byte)
        }
      }
      head += "\n# TYPE \(family.name) \(family.type.rawValue)\n".utf8
      parts.append(head)
      parts.append(lines)
    }
    return parts
  }

  private mutating func append(_ family: MetricFamily, _ write: (inout [UInt8]) -> Void) {
    if bodies[family.name] == nil { bodies[family.name] = (family, []) }
    assert(bodies[family.name]!.family == family, "two families named \(family.name)")
    write(&bodies[family.name]!.lines)
  }

  private static func appendLabels(_ labels: LabelSet, extra le: String?, to lines: inout [UInt8]) {
    guard !labels.rendered.isEmpty || le != nil else { return }
    lines.append(UInt8(ascii: "{"))
    lines += labels.rendered
    if let le {
      if !labels.rendered.isEmpty { lines.append(UInt8(ascii: ",")) }
      lines += #"le=""#.utf8
      lines += le.utf8
      lines.append(UInt8(ascii: "\""))
    }
    lines.append(UInt8(ascii: "}"))
  }

  private static func appendValue(_ value: Double, to lines: inout [UInt8]) {
    lines += formatValue(value).utf8
  }

  /// Integers without a fraction, `+Inf`, `-Inf`, `NaN`, else Swift's shortest round-trip
  /// form (which Go's ParseFloat, and so Prometheus, reads back exactly).
  static func formatValue(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    // Every integer up to 2^53 is exact in a Double: print it without a fraction.
    if value == value.rounded(), abs(value) <= 9_007_199_254_740_992 { return String(Int64(value)) }
    return value.description
  }
}

/// A histogram's state at scrape time: per-bucket (non-cumulative) counts, sum and count,
/// and the native histogram's buckets when it has one (only the protobuf format carries them).
public struct HistogramSnapshot: Sendable, Equatable {
  public var upperBounds: [Double]
  public var bucketCounts: [UInt64]
  public var sum: Double
  public var count: UInt64
  public var native: NativeHistogram?

  public init(upperBounds: [Double], bucketCounts: [UInt64], sum: Double, count: UInt64, native: NativeHistogram? = nil) {
    self.upperBounds = upperBounds
    self.bucketCounts = bucketCounts
    self.sum = sum
    self.count = count
    self.native = native
  }
}

/// Anything that contributes samples at scrape time: an engine, the HTTP server, the agent.
public protocol MetricsCollector: Sendable {
  func collect(into exposition: inout Exposition)
}
