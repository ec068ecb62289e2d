/// The one seam between the collected samples and an exposition format's bytes: the HTTP
/// route picks an encoder per scrape from the negotiated format, and `ExpositionStream`
/// drives it a piece at a time. Text 0.0.4 is `TextEncoder`; another format (the delimited
/// protobuf, OpenMetrics) is another conforming type, with no change to the collectors.
public protocol ExpositionEncoder {
  /// The `Content-Type` of what it writes.
  var contentType: String { get }

  /// Appends `family`'s samples from index `start` on (its head first when `start` is 0),
  /// stopping after the sample that takes `buffer` to `limit` bytes or more. Returns the
  /// index of the first sample not written: `family.count` when the family is done. An
  /// encoder that must see a family whole (a length-delimited message) may write all of it.
  mutating func encode(_ family: CollectedFamily, from start: Int, into buffer: inout [UInt8], limit: Int) -> Int

  /// Bytes after the last family (OpenMetrics' `# EOF`); nothing for text 0.0.4.
  mutating func finish(into buffer: inout [UInt8])
}

/// The Prometheus text format 0.0.4.
public struct TextEncoder: ExpositionEncoder {
  public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
  public var contentType: String { Self.contentType }

  /// The `le` values of the last bucket layout seen, rendered once: every target of a
  /// scrape shares the same RTT buckets, so this is formatted once per scrape, not per line.
  private var bucketBounds: [Double] = []
  private var bucketLabels: [[UInt8]] = []
  /// The current family's sample names, as bytes.
  private var familyID = -1
  private var name: [UInt8] = []
  private var bucketName: [UInt8] = []
  private var sumName: [UInt8] = []
  private var countName: [UInt8] = []

  public init() {}

  public mutating func encode(_ family: CollectedFamily, from start: Int, into buffer: inout [UInt8], limit: Int) -> Int {
    let metric = family.family
    if familyID != metric.id {
      familyID = metric.id
      name = Array(metric.name.utf8)
      bucketName = name + "_bucket".utf8
      sumName = name + "_sum".utf8
      countName = name + "_count".utf8
    }
    if start == 0 { writeHead(metric, into: &buffer) }
    var index = start
    if metric.type == .histogram {
      while index < family.histograms.count {
        let sample = family.histograms[index]
        index += 1
        writeHistogram(sample.labels, sample.histogram, into: &buffer)
        if buffer.count >= limit { break }
      }
    } else {
      while index < family.scalars.count {
        let sample = family.scalars[index]
        index += 1
        buffer += name
        Self.writeLabels(sample.labels, le: nil, into: &buffer)
        buffer.append(UInt8(ascii: " "))
        Self.writeValue(sample.value, into: &buffer)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= limit { break }
      }
    }
    return index
  }

  public mutating func finish(into buffer: inout [UInt8]) {}

  private func writeHead(_ family: MetricFamily, into buffer: inout [UInt8]) {
    buffer += "# HELP ".utf8
    buffer += name
    buffer.append(UInt8(ascii: " "))
    for byte in family.help.utf8 {
      switch byte {
      case UInt8(ascii: "\\"): buffer += #"\\"#.utf8
      case UInt8(ascii: "\n"): buffer += #"\n"#.utf8
      default: buffer.append(byte)
      }
    }
    buffer += "\n# TYPE ".utf8
    buffer += name
    buffer.append(UInt8(ascii: " "))
    buffer += family.type.rawValue.utf8
    buffer.append(UInt8(ascii: "\n"))
  }

  private mutating func writeHistogram(_ labels: LabelSet, _ histogram: HistogramSnapshot, into buffer: inout [UInt8]) {
    if histogram.upperBounds != bucketBounds {
      bucketBounds = histogram.upperBounds
      bucketLabels = bucketBounds.map { Array(Exposition.formatValue($0).utf8) }
    }
    var cumulative: UInt64 = 0
    for (index, count) in histogram.bucketCounts.enumerated() {
      cumulative += count
      buffer += bucketName
      Self.writeLabels(labels, le: bucketLabels[index], into: &buffer)
      buffer.append(UInt8(ascii: " "))
      Self.writeInteger(cumulative, into: &buffer)
      buffer.append(UInt8(ascii: "\n"))
    }
    buffer += bucketName
    Self.writeLabels(labels, le: Self.infinity, into: &buffer)
    buffer.append(UInt8(ascii: " "))
    Self.writeInteger(histogram.count, into: &buffer)
    buffer.append(UInt8(ascii: "\n"))
    buffer += sumName
    Self.writeLabels(labels, le: nil, into: &buffer)
    buffer.append(UInt8(ascii: " "))
    Self.writeValue(histogram.sum, into: &buffer)
    buffer.append(UInt8(ascii: "\n"))
    buffer += countName
    Self.writeLabels(labels, le: nil, into: &buffer)
    buffer.append(UInt8(ascii: " "))
    Self.writeInteger(histogram.count, into: &buffer)
    buffer.append(UInt8(ascii: "\n"))
  }

  private static let infinity = Array("+Inf".utf8)

  private static func writeLabels(_ labels: LabelSet, le: [UInt8]?, into buffer: inout [UInt8]) {
    guard !labels.rendered.isEmpty || le != nil else { return }
    buffer.append(UInt8(ascii: "{"))
    buffer += labels.rendered
    if let le {
      if !labels.rendered.isEmpty { buffer.append(UInt8(ascii: ",")) }
      buffer += #"le=""#.utf8
      buffer += le
      buffer.append(UInt8(ascii: "\""))
    }
    buffer.append(UInt8(ascii: "}"))
  }

  /// As `Exposition.formatValue`, with integers (most samples: counters and buckets)
  /// written digit by digit, no String made.
  static func writeValue(_ value: Double, into buffer: inout [UInt8]) {
    if value >= 0, value == value.rounded(), value <= 9_007_199_254_740_992 {
      writeInteger(UInt64(value), into: &buffer)
    } else {
      buffer += Exposition.formatValue(value).utf8
    }
  }

  static func writeInteger(_ value: UInt64, into buffer: inout [UInt8]) {
    if value < 10 {
      buffer.append(UInt8(ascii: "0") + UInt8(value))
      return
    }
    var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: a UInt64 has at most 20 digits
    var count = 0
    var rest = value
    withUnsafeMutableBytes(of: &digits) { scratch in
      while rest > 0 {
        count += 1
        scratch[32 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
        rest /= 10
      }
      buffer.append(contentsOf: scratch[(32 - count)...])
    }
  }
}

/// An exposition's body, produced a piece at a time as its reader asks for the next: the
/// encoder runs over one family after another, and each family's samples are released as
/// soon as it has been written. Used by one thread at a time (the HTTP loop or the push
/// thread pulls; nothing else holds it).
public final class ExpositionStream: @unchecked Sendable {
  /// The pieces' target size: large enough that a piece costs few calls and system calls,
  /// small enough that the body in flight stays a few of them.
  public static let pieceBytes = 64 << 10

  private var families: [CollectedFamily]
  private var familyIndex = 0
  private var sampleIndex = 0
  private var encoder: any ExpositionEncoder
  private var finished = false

  public var contentType: String { encoder.contentType }

  init(families: [CollectedFamily], encoder: any ExpositionEncoder) {
    self.families = families
    self.encoder = encoder
  }

  /// The next piece of about `pieceBytes` (the last may be shorter), nil once all was given.
  public func next() -> [UInt8]? {
    guard !finished else { return nil }
    var piece: [UInt8] = []
    piece.reserveCapacity(Self.pieceBytes + 4096)
    while piece.count < Self.pieceBytes, familyIndex < families.count {
      let family = families[familyIndex]
      sampleIndex = encoder.encode(family, from: sampleIndex, into: &piece, limit: Self.pieceBytes)
      if sampleIndex >= family.count {
        // Written: let its samples go now rather than with the whole stream.
        families[familyIndex] = CollectedFamily(family: family.family)
        familyIndex += 1
        sampleIndex = 0
      }
    }
    if familyIndex == families.count {
      encoder.finish(into: &piece)
      finished = true
      families = []
      if piece.isEmpty { return nil }
    }
    return piece
  }
}
