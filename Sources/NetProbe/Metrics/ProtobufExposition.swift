/// The delimited protobuf exposition: each metric family one `io.prometheus.client.MetricFamily`
/// message (client_model's `metrics.proto`), preceded by its length as a varint.
///
/// A hand-written encoder of the few messages the exporter sends (MetricFamily, Metric,
/// LabelPair, Counter, Gauge, Histogram, Bucket, BucketSpan) rather than swift-protobuf: it
/// writes straight into the stream's pieces with no message objects per series (a scrape of
/// 10,000 targets has about 160,000 of them), adds no package to the build, and is a few
/// hundred lines that the unit tests check byte by byte against hand-derived encodings. What
/// it gives up, decoding and the rest of the schema, the exporter never needs.
///
/// Every length is computed before its message is written (`…Size` beside each `write…`),
/// so a family of any size is written a piece at a time, like the text format, instead of
/// being built whole to learn its length. The series' `LabelPair` fields come ready-made
/// from `LabelSet.protobufFields`.
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

  // MARK: Family

  /// The size of the family's `name`, `help` and `type` fields.
  static func headSize(_ family: MetricFamily) -> Int {
    ProtobufWire.stringFieldSize(family.name.utf8.count) + ProtobufWire.stringFieldSize(family.help.utf8.count) + 2
  }

  /// The family's length, then its `name`, `help` and `type`; its `metric` fields follow.
  static func writeHead(_ family: MetricFamily, length: Int, into writer: inout ByteWriter) {
    writer.appendVarint(UInt64(length))
    writer.appendStringField(1, family.name)
    writer.appendStringField(2, family.help)
    writer.appendTag(3, .varint)
    writer.appendVarint(typeNumber(family.type))
  }

  // MARK: Counter and gauge

  /// A counter's or gauge's `metric` field (MetricFamily field 4): the labels, then
  /// Counter (3) or Gauge (2), both `{ double value = 1; }`.
  static func scalarSize(_ labels: LabelSet) -> Int {
    ProtobufWire.messageFieldSize(scalarBodySize(labels))
  }

  private static func scalarBodySize(_ labels: LabelSet) -> Int { labels.protobufFieldsCount + 11 }

  static func writeScalar(_ type: MetricType, _ labels: LabelSet, _ value: Double, into writer: inout ByteWriter) {
    writer.appendTag(4, .lengthDelimited)
    writer.appendVarint(UInt64(scalarBodySize(labels)))
    labels.withProtobufFields { writer.append($0) }
    writer.appendTag(type == .counter ? 3 : 2, .lengthDelimited)
    writer.append(9)
    writer.appendDoubleField(1, value)
  }

  // MARK: Histogram

  /// A histogram's `metric` field: the labels and the Histogram (7) of `histogramSize`.
  static func histogramMetricSize(_ labels: LabelSet, histogramSize: Int) -> Int {
    ProtobufWire.messageFieldSize(labels.protobufFieldsCount + ProtobufWire.messageFieldSize(histogramSize))
  }

  /// The Histogram message's size: count, sum, the classic buckets (cumulative, without
  /// `+Inf`), and the native histogram's fields when it has one.
  static func histogramSize(_ histogram: HistogramSnapshot) -> Int {
    var size = 1 + ProtobufWire.varintSize(histogram.count) + 9
    var cumulative: UInt64 = 0
    for count in histogram.bucketCounts {
      cumulative += count
      size += 2 + bucketBodySize(cumulative)
    }
    if let native = histogram.native { size += nativeSize(native) }
    return size
  }

  /// A classic Bucket: `cumulative_count` (1) and `upper_bound` (2); under 128 bytes.
  private static func bucketBodySize(_ cumulative: UInt64) -> Int { 1 + ProtobufWire.varintSize(cumulative) + 9 }

  static func writeHistogram(_ labels: LabelSet, _ histogram: HistogramSnapshot, size: Int, into writer: inout ByteWriter) {
    writer.appendTag(4, .lengthDelimited)
    writer.appendVarint(UInt64(labels.protobufFieldsCount + ProtobufWire.messageFieldSize(size)))
    labels.withProtobufFields { writer.append($0) }
    writer.appendTag(7, .lengthDelimited)
    writer.appendVarint(UInt64(size))
    writer.appendTag(1, .varint)
    writer.appendVarint(histogram.count)
    writer.appendDoubleField(2, histogram.sum)
    var cumulative: UInt64 = 0
    for (bound, count) in zip(histogram.upperBounds, histogram.bucketCounts) {
      cumulative += count
      writer.appendTag(3, .lengthDelimited)
      writer.append(UInt8(bucketBodySize(cumulative)))
      writer.appendTag(1, .varint)
      writer.appendVarint(cumulative)
      writer.appendDoubleField(2, bound)
    }
    if let native = histogram.native { writeNative(native, into: &writer) }
  }

  // MARK: Native histogram

  /// Histogram fields 5–13. A histogram with no observation yet and a zero threshold of 0
  /// gets an empty positive span, as metrics.proto asks, or Prometheus would read it as a
  /// classic one.
  private static func nativeBuckets(_ native: NativeHistogram) -> (negative: SparseLayout, positive: SparseLayout) {
    let negative = native.negative.spansAndDeltas()
    var positive = native.positive.spansAndDeltas()
    if native.zeroThreshold == 0, native.zeroCount == 0, negative.spans.isEmpty, positive.spans.isEmpty {
      positive.spans = [BucketSpan(offset: 0, length: 0)]
    }
    return (negative, positive)
  }

  private static func nativeSize(_ native: NativeHistogram) -> Int {
    let buckets = nativeBuckets(native)
    return 1 + ProtobufWire.varintSize(ProtobufWire.zigzag(Int64(native.schema))) + 9 + 1
      + ProtobufWire.varintSize(native.zeroCount) + layoutSize(buckets.negative) + layoutSize(buckets.positive)
  }

  private static func writeNative(_ native: NativeHistogram, into writer: inout ByteWriter) {
    writer.appendTag(5, .varint)
    writer.appendVarint(ProtobufWire.zigzag(Int64(native.schema)))
    writer.appendDoubleField(6, native.zeroThreshold)
    writer.appendTag(7, .varint)
    writer.appendVarint(native.zeroCount)
    let buckets = nativeBuckets(native)
    writeLayout(buckets.negative, spanField: 9, deltaField: 10, into: &writer)
    writeLayout(buckets.positive, spanField: 12, deltaField: 13, into: &writer)
  }

  typealias SparseLayout = (spans: [BucketSpan], deltas: [Int64])

  /// A BucketSpan: `offset` (1, sint32) and `length` (2, uint32).
  private static func spanBodySize(_ span: BucketSpan) -> Int {
    2 + ProtobufWire.varintSize(ProtobufWire.zigzag(Int64(span.offset))) + ProtobufWire.varintSize(UInt64(span.length))
  }

  private static func layoutSize(_ layout: SparseLayout) -> Int {
    var size = 0
    for span in layout.spans { size += ProtobufWire.messageFieldSize(spanBodySize(span)) }
    for delta in layout.deltas { size += 1 + ProtobufWire.varintSize(ProtobufWire.zigzag(delta)) }
    return size
  }

  private static func writeLayout(_ layout: SparseLayout, spanField: Int, deltaField: Int, into writer: inout ByteWriter) {
    for span in layout.spans {
      writer.appendTag(spanField, .lengthDelimited)
      writer.appendVarint(UInt64(spanBodySize(span)))
      writer.appendTag(1, .varint)
      writer.appendVarint(ProtobufWire.zigzag(Int64(span.offset)))
      writer.appendTag(2, .varint)
      writer.appendVarint(UInt64(span.length))
    }
    for delta in layout.deltas {
      writer.appendTag(deltaField, .varint)
      writer.appendVarint(ProtobufWire.zigzag(delta))
    }
  }

  // MARK: Labels

  /// The `label` fields (Metric field 1, each a LabelPair of `name` (1) and `value` (2)) of
  /// `pairs`, in order: made once per label set, when it is made.
  static func labelFields(_ pairs: [(String, String)]) -> [UInt8] {
    var writer = ByteWriter(capacity: 64)
    for (name, value) in pairs {
      writer.appendTag(1, .lengthDelimited)
      writer.appendVarint(UInt64(ProtobufWire.stringFieldSize(name.utf8.count) + ProtobufWire.stringFieldSize(value.utf8.count)))
      writer.appendStringField(1, name)
      writer.appendStringField(2, value)
    }
    return writer.take()
  }
}

/// The protobuf wire format's sizes (protobuf.dev/programming-guides/encoding): a tag is
/// `field << 3 | wire type` as a varint (one byte below field 16); varints are little-endian
/// groups of 7 bits with the high bit set on all but the last; `sint` values are
/// zigzag-mapped first; doubles are 8 little-endian bytes; strings and messages are their
/// length as a varint, then the bytes. The writing is `ByteWriter`'s.
enum ProtobufWire {
  enum WireType: UInt8 {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
  }

  /// Bytes of `value` as a varint: 1 to 10.
  @inline(__always)
  static func varintSize(_ value: UInt64) -> Int {
    // Significant bits, rounded up to groups of 7; 0 still takes a byte.
    (64 - (value | 1).leadingZeroBitCount + 6) / 7
  }

  /// A one-byte-tag field of `length` bytes: tag, length, content.
  @inline(__always)
  static func messageFieldSize(_ length: Int) -> Int { 1 + varintSize(UInt64(length)) + length }

  @inline(__always)
  static func stringFieldSize(_ length: Int) -> Int { messageFieldSize(length) }

  /// Zigzag: 0, −1, 1, −2 … → 0, 1, 2, 3 …, so small negative numbers stay short.
  static func zigzag(_ value: Int64) -> UInt64 {
    UInt64(bitPattern: (value << 1) ^ (value >> 63))
  }
}

extension ByteWriter {
  @inline(__always)
  mutating func appendVarint(_ value: UInt64) {
    reserve(10)
    var rest = value
    while rest >= 0x80 {
      appendUnchecked(UInt8(truncatingIfNeeded: rest) | 0x80)
      rest >>= 7
    }
    appendUnchecked(UInt8(rest))
  }

  /// A tag of a field below 16 (all the exporter writes): one byte.
  @inline(__always)
  mutating func appendTag(_ field: Int, _ wireType: ProtobufWire.WireType) {
    assert(field < 16)
    append(UInt8(field << 3) | wireType.rawValue)
  }

  @inline(__always)
  mutating func appendDoubleField(_ field: Int, _ value: Double) {
    reserve(9)
    appendUnchecked(UInt8(field << 3) | ProtobufWire.WireType.fixed64.rawValue)
    appendLittleEndian(value.bitPattern)
  }

  mutating func appendStringField(_ field: Int, _ value: String) {
    appendTag(field, .lengthDelimited)
    appendVarint(UInt64(value.utf8.count))
    append(value)
  }
}

/// The delimited protobuf format behind the exposition's encoder seam. A family's length
/// comes first, so it is computed over the family's samples before any is written; then
/// the samples are written a range at a time, as the text encoder writes them.
public struct ProtobufEncoder: ExpositionEncoder {
  public var contentType: String { ProtobufExposition.contentType }

  /// The labels once per sample, a value's 11 bytes, or a histogram's count and sum and
  /// about 14 bytes a classic bucket, and up to a few hundred for the native buckets.
  public func estimatedBytes(nameBytes: Int, labelBytes: Int, buckets: Int?, native: Bool) -> Int {
    guard let buckets else { return labelBytes + 13 }
    return labelBytes + 24 + 14 * buckets + (native ? 160 : 0)
  }

  public init() {}

  public mutating func encode(_ family: CollectedFamily, _ range: Range<Int>, into writer: inout ByteWriter) {
    let metric = family.family
    if range.lowerBound == 0 { writeHead(family, into: &writer) }
    if metric.type == .histogram {
      family.histograms.withUnsafeBufferPointer { samples in
        for index in range {
          let histogram = samples[index].histogram
          let size = ProtobufExposition.histogramSize(histogram)
          ProtobufExposition.writeHistogram(samples[index].labels, histogram, size: size, into: &writer)
        }
      }
    } else {
      family.scalars.withUnsafeBufferPointer { samples in
        for index in range {
          ProtobufExposition.writeScalar(metric.type, samples[index].labels, samples[index].value, into: &writer)
        }
      }
    }
  }

  private func writeHead(_ family: CollectedFamily, into writer: inout ByteWriter) {
    // Read in place: a copy of each sample would retain and release its label set and
    // arrays, which cost more than the sizes themselves.
    var length = ProtobufExposition.headSize(family.family)
    family.histograms.withUnsafeBufferPointer { samples in
      for index in samples.indices {
        let size = ProtobufExposition.histogramSize(samples[index].histogram)
        length += ProtobufExposition.histogramMetricSize(samples[index].labels, histogramSize: size)
      }
    }
    family.scalars.withUnsafeBufferPointer { samples in
      for index in samples.indices { length += ProtobufExposition.scalarSize(samples[index].labels) }
    }
    ProtobufExposition.writeHead(family.family, length: length, into: &writer)
  }

  public mutating func finish(into writer: inout ByteWriter) {}
}
