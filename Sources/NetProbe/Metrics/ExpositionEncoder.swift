/// The one seam between the collected samples and an exposition format's bytes: the HTTP
/// route picks an encoder per scrape from the negotiated format, and `ExpositionStream`
/// drives it a piece at a time. Text 0.0.4 is `TextEncoder`; another format (the delimited
/// protobuf, OpenMetrics) is another conforming type, with no change to the collectors.
public protocol ExpositionEncoder: Sendable {
  /// The `Content-Type` of what it writes.
  var contentType: String { get }

  /// Appends `family`'s samples in `range` (its head first when the range starts at 0).
  /// The stream may give a family's ranges to different copies of the encoder, on
  /// different threads, in any order: what a range's bytes are depends on the family and
  /// the range alone.
  mutating func encode(_ family: CollectedFamily, _ range: Range<Int>, into writer: inout ByteWriter)

  /// About how many bytes it writes for a sample, for cutting the exposition into pieces:
  /// `labelBytes` is the label set's protobuf length (held beside its reference, so read
  /// without a cache miss; within a few bytes of its text rendering), `buckets` the classic
  /// buckets of a histogram (nil for a counter or gauge), `native` whether it has native ones.
  func estimatedBytes(nameBytes: Int, labelBytes: Int, buckets: Int?, native: Bool) -> Int

  /// Bytes after the last family (OpenMetrics' `# EOF`); nothing for text 0.0.4.
  mutating func finish(into writer: inout ByteWriter)
}

/// The Prometheus text format 0.0.4.
public struct TextEncoder: ExpositionEncoder {
  public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
  public var contentType: String { Self.contentType }

  /// Per line the name (and a suffix), the labels and a value; a histogram's lines are its
  /// buckets, `+Inf`, sum and count, each with an `le` label or a suffix.
  public func estimatedBytes(nameBytes: Int, labelBytes: Int, buckets: Int?, native: Bool) -> Int {
    let line = nameBytes + labelBytes + 24
    guard let buckets else { return line }
    return (buckets + 3) * (line + 12)
  }

  /// The `,le="…"} ` tails of the last bucket layout seen, rendered once: every target of
  /// a scrape shares the same RTT buckets, so they are formatted once per scrape, not per
  /// line. The last is `+Inf`'s.
  private var bucketBounds: [Double] = []
  private var bucketTails: [[UInt8]] = []
  /// The same for a series without labels: `le="…"} `.
  private var bareBucketTails: [[UInt8]] = []
  /// The current family's line starts (`name{`, `name_bucket{`, …), as bytes: a line is
  /// then a few copies — its start, the series' labels, its tail, the value.
  private var familyID = -1
  private var name: [UInt8] = []
  private var nameOpen: [UInt8] = []
  private var bucketOpen: [UInt8] = []
  private var sumOpen: [UInt8] = []
  private var countOpen: [UInt8] = []
  private var sumName: [UInt8] = []
  private var countName: [UInt8] = []

  public init() {}

  public mutating func encode(_ family: CollectedFamily, _ range: Range<Int>, into writer: inout ByteWriter) {
    let metric = family.family
    if familyID != metric.id {
      familyID = metric.id
      name = Array(metric.name.utf8)
      nameOpen = name + "{".utf8
      bucketOpen = name + "_bucket{".utf8
      sumOpen = name + "_sum{".utf8
      countOpen = name + "_count{".utf8
      sumName = name + "_sum".utf8
      countName = name + "_count".utf8
    }
    if range.lowerBound == 0 { writeHead(metric, into: &writer) }
    if metric.type == .histogram {
      family.histograms.withUnsafeBufferPointer { samples in
        for index in range { writeHistogram(samples[index].labels, samples[index].histogram, into: &writer) }
      }
    } else {
      let name = self.name
      let nameOpen = self.nameOpen
      family.scalars.withUnsafeBufferPointer { samples in
        for index in range {
          Self.writeStart(name, nameOpen, samples[index].labels, into: &writer)
          Self.writeValue(samples[index].value, into: &writer)
          writer.append(UInt8(ascii: "\n"))
        }
      }
    }
  }

  public mutating func finish(into writer: inout ByteWriter) {}

  private func writeHead(_ family: MetricFamily, into writer: inout ByteWriter) {
    writer.append("# HELP ")
    writer.append(name)
    writer.append(UInt8(ascii: " "))
    for byte in family.help.utf8 {
      switch byte {
      case UInt8(ascii: "\\"): writer.append(#"\\"#)
      case UInt8(ascii: "\n"): writer.append(#"\n"#)
      default: writer.append(byte)
      }
    }
    writer.append("\n# TYPE ")
    writer.append(name)
    writer.append(UInt8(ascii: " "))
    writer.append(family.type.rawValue)
    writer.append(UInt8(ascii: "\n"))
  }

  private mutating func writeHistogram(_ labels: LabelSet, _ histogram: HistogramSnapshot, into writer: inout ByteWriter) {
    if histogram.upperBounds != bucketBounds {
      bucketBounds = histogram.upperBounds
      bareBucketTails = (bucketBounds.map(Exposition.formatValue) + ["+Inf"]).map { Array("le=\"\($0)\"} ".utf8) }
      bucketTails = bareBucketTails.map { [UInt8(ascii: ",")] + $0 }
    }
    labels.withRendered { rendered in
      var cumulative: UInt64 = 0
      histogram.bucketCounts.withUnsafeBufferPointer { counts in
        for index in 0...counts.count {
          cumulative = index < counts.count ? cumulative + counts[index] : histogram.count
          writer.append(bucketOpen)
          if rendered.isEmpty {
            writer.append(bareBucketTails[index])
          } else {
            writer.append(rendered)
            writer.append(bucketTails[index])
          }
          writer.appendDecimal(cumulative)
          writer.append(UInt8(ascii: "\n"))
        }
      }
    }
    Self.writeStart(sumName, sumOpen, labels, into: &writer)
    Self.writeValue(histogram.sum, into: &writer)
    writer.append(UInt8(ascii: "\n"))
    Self.writeStart(countName, countOpen, labels, into: &writer)
    writer.appendDecimal(histogram.count)
    writer.append(UInt8(ascii: "\n"))
  }

  /// A line up to its value: `open` (the name and `{`) with the labels and `} `, or, for a
  /// series without labels, `name ` alone.
  @inline(__always)
  private static func writeStart(_ name: [UInt8], _ open: [UInt8], _ labels: LabelSet, into writer: inout ByteWriter) {
    labels.withRendered { rendered in
      if rendered.isEmpty {
        writer.append(name)
      } else {
        writer.append(open)
        writer.append(rendered)
        writer.append(UInt8(ascii: "}"))
      }
      writer.append(UInt8(ascii: " "))
    }
  }

  /// As `Exposition.formatValue`, with integers (most samples: counters and buckets)
  /// written digit by digit, no String made.
  static func writeValue(_ value: Double, into writer: inout ByteWriter) {
    if value >= 0, value == value.rounded(), value <= 9_007_199_254_740_992 {
      writer.appendDecimal(UInt64(value))
    } else {
      writer.append(Exposition.formatValue(value))
    }
  }
}
