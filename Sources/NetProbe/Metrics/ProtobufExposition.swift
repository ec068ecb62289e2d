/// The delimited protobuf exposition: each metric family one `io.prometheus.client.MetricFamily`
/// message (client_model's `metrics.proto`), preceded by its length as a varint.
///
/// A hand-written encoder of the few messages the exporter sends (MetricFamily, Metric,
/// LabelPair, Counter, Gauge, Histogram, Bucket, BucketSpan) rather than swift-protobuf: it
/// writes straight into the per-family buffers the text format uses, nested messages in
/// place, with no message objects per series (a scrape of 10,000 targets has about 160,000
/// of them), adds no package to the build, and is under 200 lines that the unit tests check
/// byte by byte against hand-derived encodings. What it gives up, decoding and the rest of the schema,
/// the exporter never needs.
///
/// Fields are written as client_golang's marshaller writes them: in field-number order,
/// every set proto2 `optional` present, repeated scalars (the deltas) unpacked, the classic
/// `+Inf` bucket left out (`sample_count` carries it).
enum ProtobufExposition {
  static let contentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

  /// `MetricFamily.type` values.
  private static func typeNumber(_ type: MetricType) -> UInt64 {
    switch type {
    case .counter: 0
    case .gauge: 1
    case .histogram: 4
    }
  }

  /// One whole MetricFamily message, preceded by its length: `name`, `help`, `type`, then
  /// a `metric` field per sample. Written in place (see `ProtobufWire.appendMessage`).
  static func appendFamily(_ collected: CollectedFamily, to buffer: inout [UInt8]) {
    let family = collected.family
    ProtobufWire.appendDelimited(to: &buffer) { message in
      ProtobufWire.appendString(field: 1, family.name, to: &message)
      ProtobufWire.appendString(field: 2, family.help, to: &message)
      ProtobufWire.appendVarintField(field: 3, typeNumber(family.type), to: &message)
      for sample in collected.scalars { appendSample(family.type, sample.labels, sample.value, to: &message) }
      for sample in collected.histograms { appendHistogram(sample.labels, sample.histogram, to: &message) }
    }
  }

  /// A `metric` field (MetricFamily field 4) holding a counter's or gauge's value
  /// (Counter and Gauge are both `{ double value = 1; }`).
  static func appendSample(_ type: MetricType, _ labels: LabelSet, _ value: Double, to body: inout [UInt8]) {
    ProtobufWire.appendMessage(field: 4, to: &body) { metric in
      appendLabels(labels, to: &metric)
      ProtobufWire.appendMessage(field: type == .counter ? 3 : 2, to: &metric) { ProtobufWire.appendDouble(field: 1, value, to: &$0) }
    }
  }

  /// A `metric` field holding a histogram: the classic buckets (cumulative, without `+Inf`),
  /// and the native histogram's schema, zero bucket, spans and deltas when it has one.
  static func appendHistogram(_ labels: LabelSet, _ histogram: HistogramSnapshot, to body: inout [UInt8]) {
    ProtobufWire.appendMessage(field: 4, to: &body) { metric in
      appendLabels(labels, to: &metric)
      ProtobufWire.appendMessage(field: 7, to: &metric) { message in
        ProtobufWire.appendVarintField(field: 1, histogram.count, to: &message)
        ProtobufWire.appendDouble(field: 2, histogram.sum, to: &message)
        var cumulative: UInt64 = 0
        for (bound, count) in zip(histogram.upperBounds, histogram.bucketCounts) {
          cumulative += count
          ProtobufWire.appendMessage(field: 3, to: &message) { bucket in
            ProtobufWire.appendVarintField(field: 1, cumulative, to: &bucket)
            ProtobufWire.appendDouble(field: 2, bound, to: &bucket)
          }
        }
        if let native = histogram.native { appendNative(native, to: &message) }
      }
    }
  }

  /// Histogram fields 5–13. A histogram with no observation yet and a zero threshold of 0
  /// gets an empty positive span, as metrics.proto asks, or Prometheus would read it as a
  /// classic one.
  private static func appendNative(_ native: NativeHistogram, to message: inout [UInt8]) {
    ProtobufWire.appendVarintField(field: 5, ProtobufWire.zigzag(Int64(native.schema)), to: &message)
    ProtobufWire.appendDouble(field: 6, native.zeroThreshold, to: &message)
    ProtobufWire.appendVarintField(field: 7, native.zeroCount, to: &message)
    let negative = native.negative.spansAndDeltas()
    var positive = native.positive.spansAndDeltas()
    if native.zeroThreshold == 0, native.zeroCount == 0, negative.spans.isEmpty, positive.spans.isEmpty {
      positive.spans = [BucketSpan(offset: 0, length: 0)]
    }
    appendBuckets(negative, spanField: 9, deltaField: 10, to: &message)
    appendBuckets(positive, spanField: 12, deltaField: 13, to: &message)
  }

  private static func appendBuckets(
    _ buckets: (spans: [BucketSpan], deltas: [Int64]), spanField: Int, deltaField: Int, to message: inout [UInt8]
  ) {
    for span in buckets.spans {
      ProtobufWire.appendMessage(field: spanField, to: &message) { bytes in
        ProtobufWire.appendVarintField(field: 1, ProtobufWire.zigzag(Int64(span.offset)), to: &bytes)
        ProtobufWire.appendVarintField(field: 2, UInt64(span.length), to: &bytes)
      }
    }
    for delta in buckets.deltas {
      ProtobufWire.appendVarintField(field: deltaField, ProtobufWire.zigzag(delta), to: &message)
    }
  }

  /// The series' labels as `Metric.label` fields (LabelPair messages), in the set's order,
  /// read back from the text block `LabelSet` renders once per series (`a="1",b="2"`):
  /// names need no unescaping, values only `\\`, `\"` and `\n`, and a `"` inside a value
  /// is always escaped, so the block splits unambiguously. The label set stays the one
  /// rendering every format shares, with no second copy of each series' labels.
  static func appendLabels(_ labels: LabelSet, to bytes: inout [UInt8]) {
    let block = labels.rendered
    var index = 0
    while index < block.count {
      let nameStart = index
      while block[index] != UInt8(ascii: "=") { index += 1 }
      let nameEnd = index
      index += 2  // `="`
      ProtobufWire.appendMessage(field: 1, to: &bytes) { pair in
        ProtobufWire.appendTag(field: 1, wireType: .lengthDelimited, to: &pair)
        ProtobufWire.appendVarint(UInt64(nameEnd - nameStart), to: &pair)
        pair += block[nameStart..<nameEnd]
        ProtobufWire.appendMessage(field: 2, to: &pair) { value in
          while block[index] != UInt8(ascii: "\"") {
            if block[index] == UInt8(ascii: "\\") {
              index += 1
              value.append(block[index] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : block[index])
            } else {
              value.append(block[index])
            }
            index += 1
          }
        }
      }
      index += 2  // `"` and the `,` before the next label (or past the end)
    }
  }
}

/// The protobuf wire format's primitives (protobuf.dev/programming-guides/encoding): a tag
/// is `field << 3 | wire type` as a varint; varints are little-endian groups of 7 bits with
/// the high bit set on all but the last; `sint` values are zigzag-mapped first; doubles are
/// 8 little-endian bytes; strings and messages are their length as a varint, then the bytes.
enum ProtobufWire {
  enum WireType: UInt64 {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
  }

  static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
    var rest = value
    while rest >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
      rest >>= 7
    }
    bytes.append(UInt8(rest))
  }

  /// Zigzag: 0, −1, 1, −2 … → 0, 1, 2, 3 …, so small negative numbers stay short.
  static func zigzag(_ value: Int64) -> UInt64 {
    UInt64(bitPattern: (value << 1) ^ (value >> 63))
  }

  static func appendTag(field: Int, wireType: WireType, to bytes: inout [UInt8]) {
    appendVarint(UInt64(field) << 3 | wireType.rawValue, to: &bytes)
  }

  static func appendVarintField(field: Int, _ value: UInt64, to bytes: inout [UInt8]) {
    appendTag(field: field, wireType: .varint, to: &bytes)
    appendVarint(value, to: &bytes)
  }

  static func appendDouble(field: Int, _ value: Double, to bytes: inout [UInt8]) {
    appendTag(field: field, wireType: .fixed64, to: &bytes)
    let bits = value.bitPattern
    for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
  }

  static func appendString(field: Int, _ value: String, to bytes: inout [UInt8]) {
    appendTag(field: field, wireType: .lengthDelimited, to: &bytes)
    appendVarint(UInt64(value.utf8.count), to: &bytes)
    bytes += value.utf8
  }

  /// A length-delimited message at the top level (no tag): its length as a varint, then the
  /// message `write` appends in place, as `appendMessage` does.
  static func appendDelimited(to bytes: inout [UInt8], _ write: (inout [UInt8]) -> Void) {
    let lengthAt = bytes.count
    bytes.append(0)
    write(&bytes)
    setLength(at: lengthAt, in: &bytes)
  }

  /// A message field whose content `write` appends in place: its length is known only
  /// afterwards, so one byte is set aside for it (enough below 128 bytes: labels, buckets,
  /// spans) and widened in the rare case it is not — no buffer per message.
  static func appendMessage(field: Int, to bytes: inout [UInt8], _ write: (inout [UInt8]) -> Void) {
    appendTag(field: field, wireType: .lengthDelimited, to: &bytes)
    let lengthAt = bytes.count
    bytes.append(0)
    write(&bytes)
    setLength(at: lengthAt, in: &bytes)
  }

  /// Fills the one byte set aside at `lengthAt` with the length of what follows it, widened
  /// to a longer varint when the length is 128 or more.
  private static func setLength(at lengthAt: Int, in bytes: inout [UInt8]) {
    let length = bytes.count - lengthAt - 1
    if length < 0x80 {
      bytes[lengthAt] = UInt8(length)
      return
    }
    var varint: [UInt8] = []
    appendVarint(UInt64(length), to: &varint)
    bytes.replaceSubrange(lengthAt...lengthAt, with: varint)
  }
}

/// The delimited protobuf format behind the exposition's encoder seam. A family's length
/// comes before its messages, so each family is written whole, in place, as one piece
/// (the RTT family of 10,000 targets is about 1.7 MB): the protocol allows it, and it still
/// holds one family at a time, never the whole body.
public struct ProtobufEncoder: ExpositionEncoder {
  public var contentType: String { ProtobufExposition.contentType }

  public init() {}

  /// The family's bytes, made in a buffer kept from family to family (its capacity stays).
  private var scratch: [UInt8] = []

  public mutating func encode(_ family: CollectedFamily, from start: Int, into writer: inout ByteWriter, limit: Int) -> Int {
    precondition(start == 0, "a protobuf family is written whole")
    scratch.removeAll(keepingCapacity: true)
    ProtobufExposition.appendFamily(family, to: &scratch)
    writer.append(scratch)
    return family.count
  }

  public mutating func finish(into writer: inout ByteWriter) {}
}
