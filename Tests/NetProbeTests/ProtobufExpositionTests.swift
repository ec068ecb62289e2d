import Testing
@testable import NetProbe

/// The delimited protobuf exposition against bytes derived by hand from metrics.proto and
/// the protobuf wire format (tag = field << 3 | wire type; 0 varint, 1 fixed64, 2 length-
/// delimited), never against the encoder's own output. The lab test
/// (`Tests/lab/test_native_histograms.py`) has Prometheus and the Pushgateway decode it.
@Suite struct ProtobufExpositionTests {
  @Test func gaugeFamilyBytes() {
    var exposition = Exposition()
    exposition.add(MetricFamily("g", .gauge, "h", labels: ["a"]), LabelSet([("a", "b")]), 1.5)
    let expected: [UInt8] = [
      0x1D,  // the MetricFamily's length, 29
      0x0A, 0x01, 0x67,  // name (1) "g"
      0x12, 0x01, 0x68,  // help (2) "h"
      0x18, 0x01,  // type (3) GAUGE
      0x22, 0x13,  // metric (4), 19 bytes
      0x0A, 0x06, 0x0A, 0x01, 0x61, 0x12, 0x01, 0x62,  // label (1): LabelPair name "a", value "b"
      0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F,  // gauge (2): value (1) 1.5 = 0x3FF8000000000000
    ]
    #expect(exposition.render(as: ProtobufEncoder()) == expected)
  }

  @Test func counterUsesTheCounterField() {
    var exposition = Exposition()
    exposition.add(MetricFamily("c_total", .counter, ""), .empty, 2)
    let expected: [UInt8] = [
      0x1A,  // 26 bytes
      0x0A, 0x07, 0x63, 0x5F, 0x74, 0x6F, 0x74, 0x61, 0x6C,  // name "c_total"
      0x12, 0x00,  // help ""
      0x18, 0x00,  // type COUNTER (0, still written: proto2 optional)
      0x22, 0x0B,  // metric, 11 bytes
      0x1A, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x40,  // counter (3): value 2.0 = 0x4000000000000000
    ]
    #expect(exposition.render(as: ProtobufEncoder()) == expected)
  }

  @Test func nativeHistogramBytes() {
    var native = NativeHistogram(NativeHistogramSettings())
    native.record(1)
    let snapshot = HistogramSnapshot(upperBounds: [1], bucketCounts: [1], sum: 1, count: 1, native: native)
    var exposition = Exposition()
    exposition.addHistogram(MetricFamily("h", .histogram, ""), .empty, snapshot)
    let one: [UInt8] = [0, 0, 0, 0, 0, 0, 0xF0, 0x3F]  // 1.0 = 0x3FF0000000000000
    let threshold: [UInt8] = [0, 0, 0, 0, 0, 0, 0xF0, 0x37]  // 2^-128 = 0x37F0000000000000
    var histogram: [UInt8] = [0x08, 0x01]  // sample_count (1) 1
    histogram += [0x11] + one  // sample_sum (2) 1.0
    histogram += [0x1A, 0x0B, 0x08, 0x01, 0x11] + one  // bucket (3): cumulative_count 1, upper_bound 1.0
    histogram += [0x28, 0x06]  // schema (5) 3, zigzag 6
    histogram += [0x31] + threshold  // zero_threshold (6)
    histogram += [0x38, 0x00]  // zero_count (7) 0
    histogram += [0x62, 0x04, 0x08, 0x00, 0x10, 0x01]  // positive_span (12): offset 0, length 1
    histogram += [0x68, 0x02]  // positive_delta (13): +1, zigzag 2
    #expect(histogram.count == 45)
    let expected: [UInt8] = [0x38, 0x0A, 0x01, 0x68, 0x12, 0x00, 0x18, 0x04, 0x22, 0x2F, 0x3A, 0x2D] + histogram
    #expect(exposition.render(as: ProtobufEncoder()) == expected)
  }

  @Test func emptyNativeHistogramIsStillMarkedNative() {
    var settings = NativeHistogramSettings()
    settings.zeroThreshold = 0
    let snapshot = HistogramSnapshot(upperBounds: [], bucketCounts: [], sum: 0, count: 0, native: NativeHistogram(settings))
    let message = metricBytes(snapshot)
    // metric (4) { histogram (7) { count 0, sum 0, schema 3, zero_threshold 0, zero_count 0,
    // positive_span { offset 0, length 0 } } }
    let zero: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
    let histogram: [UInt8] = [0x08, 0x00, 0x11] + zero + [0x28, 0x06, 0x31] + zero + [0x38, 0x00, 0x62, 0x04, 0x08, 0x00, 0x10, 0x00]
    #expect(message == [0x22, UInt8(histogram.count + 2), 0x3A, UInt8(histogram.count)] + histogram)
  }

  @Test func negativeBucketsAndDeltas() {
    var settings = NativeHistogramSettings()
    settings.bucketFactor = 2  // schema 0
    var native = NativeHistogram(settings)
    for value in [-0.75, 6, 6, 6, 0.3] { native.record(value) }
    let snapshot = HistogramSnapshot(upperBounds: [], bucketCounts: [], sum: 0, count: 5, native: native)
    let message = metricBytes(snapshot)
    // −0.75 is negative bucket 0; 0.3 is in (0.25, 0.5], bucket −1; 6 is in (4, 8], bucket 3.
    // Positive −1 and 3 have three empty buckets between them: two spans, the second at 3
    // past the first's end (index 0).
    let tail: [UInt8] =
      [0x4A, 0x04, 0x08, 0x00, 0x10, 0x01]  // negative_span (9): offset 0, length 1
      + [0x50, 0x02]  // negative_delta (10): +1
      + [0x62, 0x04, 0x08, 0x01, 0x10, 0x01]  // positive_span: offset −1 (zigzag 1), length 1
      + [0x62, 0x04, 0x08, 0x06, 0x10, 0x01]  // positive_span: offset 3 (zigzag 6), length 1
      + [0x68, 0x02, 0x68, 0x04]  // positive_delta: +1, then +2 (3 − 1)
    #expect(Array(message.suffix(tail.count + 2).prefix(2)) == [0x38, 0x00])  // zero_count 0 before them
    #expect(Array(message.suffix(tail.count)) == tail)
  }

  @Test func labelPairsCarryTheUnescapedValues() {
    let labels = LabelSet([("v", "a\"b\\c\nd"), ("e", "")]).appending([("u", "é")])
    let bytes = labels.protobufFields
    #expect(labels.names == ["v", "e", "u"])
    let expected: [UInt8] =
      [0x0A, 0x0C, 0x0A, 0x01, 0x76, 0x12, 0x07, 0x61, 0x22, 0x62, 0x5C, 0x63, 0x0A, 0x64]  // v = a"b\c⏎d, 7 bytes
      + [0x0A, 0x05, 0x0A, 0x01, 0x65, 0x12, 0x00]  // e = ""
      + [0x0A, 0x07, 0x0A, 0x01, 0x75, 0x12, 0x02, 0xC3, 0xA9]  // u = é, two UTF-8 bytes
    #expect(bytes == expected)
    #expect(LabelSet.empty.protobufFields.isEmpty)
  }

  @Test func longMessagesGetMultiByteLengths() {
    let bytes = LabelSet([("a", String(repeating: "x", count: 200))]).protobufFields
    // LabelPair: 0A 01 'a', then value (2): 12, 200 = C8 01, the bytes: 206 in all = CE 01.
    #expect(Array(bytes.prefix(9)) == [0x0A, 0xCE, 0x01, 0x0A, 0x01, 0x61, 0x12, 0xC8, 0x01])
    #expect(bytes.count == 3 + 206 && bytes.last == UInt8(ascii: "x"))
  }

  @Test func wirePrimitives() {
    var writer = ByteWriter(capacity: 16)
    writer.appendVarint(300)  // the protobuf guide's example: AC 02
    #expect(writer.take() == [0xAC, 0x02])
    writer.appendVarint(UInt64.max)
    #expect(writer.take() == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    for value: UInt64 in [0, 1, 127, 128, 16383, 16384, 1 << 35, 1 << 62, UInt64.max] {
      writer.appendVarint(value)
      #expect(writer.take().count == ProtobufWire.varintSize(value), "\(value)")
    }
    #expect(ProtobufWire.zigzag(0) == 0 && ProtobufWire.zigzag(-1) == 1 && ProtobufWire.zigzag(1) == 2)
    #expect(ProtobufWire.zigzag(-2) == 3 && ProtobufWire.zigzag(Int64.min) == UInt64.max)
  }

  @Test func textFormatIgnoresTheNativeBuckets() {
    var native = NativeHistogram(NativeHistogramSettings())
    native.record(0.5)
    let snapshot = HistogramSnapshot(upperBounds: [1], bucketCounts: [1], sum: 0.5, count: 1, native: native)
    var exposition = Exposition()
    exposition.addHistogram(MetricFamily("h", .histogram, "x"), .empty, snapshot)
    #expect(
      String(decoding: exposition.render(), as: UTF8.self)
        == "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n")
  }

  @Test func pushBodiesSayTheirFormat() {
    let protobuf = PushBody(gzip: false, format: .protobuf, source: { BufferedBody([[1, 2]]) }).open()
    #expect(protobuf.headers == ["Content-Type: \(ProtobufExposition.contentType)", "Transfer-Encoding: chunked"])
    let text = PushBody(gzip: false, source: { BufferedBody([[1]]) }).open()
    #expect(text.headers == ["Content-Type: text/plain; version=0.0.4; charset=utf-8", "Transfer-Encoding: chunked"])
    // The push follows ping.native_histograms: protobuf only when they are on.
    var config = NetProbeConfig()
    #expect(PushTarget.format(for: config) == .text)
    config.ping.nativeHistograms = NativeHistogramSettings()
    #expect(PushTarget.format(for: config) == .protobuf)
    // A reload that turns them on restarts the push loop in the other format.
    let push = PushConfig(url: "http://gw:9091")
    #expect(PushTarget(push, format: .protobuf, hostName: "a") != PushTarget(push, hostName: "a"))
  }

  @Test func negotiatesAsClientGolang() {
    // Prometheus 2.42 with --enable-feature=native-histograms.
    let prometheusNative =
      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
      + "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
      + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    #expect(ExpositionFormat.negotiate(accept: prometheusNative) == .protobuf)
    // Prometheus 2.42 without it: OpenMetrics preferred, which we do not offer; text.
    let prometheusPlain =
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
      + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    #expect(ExpositionFormat.negotiate(accept: prometheusPlain) == .text)
    #expect(ExpositionFormat.negotiate(accept: nil) == .text)
    #expect(ExpositionFormat.negotiate(accept: "*/*") == .text)
    // Quality decides, not order.
    let textFirst =
      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2,text/plain;q=0.9"
    #expect(ExpositionFormat.negotiate(accept: textFirst) == .text)
    let spaced = "text/html, Application/Vnd.Google.Protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    #expect(ExpositionFormat.negotiate(accept: spaced) == .protobuf)
    // Another protobuf encoding or another message, or q=0, is not ours.
    #expect(
      ExpositionFormat.negotiate(accept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text")
        == .text)
    #expect(ExpositionFormat.negotiate(accept: "application/vnd.google.protobuf;proto=other.Message;encoding=delimited") == .text)
    #expect(
      ExpositionFormat.negotiate(
        accept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0") == .text)
    // text/plain of another version is passed over for the next range.
    let otherVersion =
      "text/plain;version=9.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5"
    #expect(ExpositionFormat.negotiate(accept: otherVersion) == .protobuf)
  }

  @Test(arguments: [0, 2])
  func largeFamiliesAreStreamedWithExactLengths(encoders: Int) throws {
    // Enough histograms and counters that each family spans several 64 KB pieces: the
    // family's length, written before its first piece, must match what follows it, and
    // every nested length must match its message, or a decoder would read garbage.
    var native = NativeHistogram(NativeHistogramSettings())
    for value in [-2.0, 0, 1e-9, 0.001, 0.0011, 0.5, 3, 1e6] { native.record(value) }
    let bounds = (0..<21).map { 0.00005 * Double(1 << $0) }
    var exposition = Exposition()
    let histogramFamily = MetricFamily("h_seconds", .histogram, "help", labels: ["target"])
    let counterFamily = MetricFamily("c_total", .counter, String(repeating: "long help ", count: 20), labels: ["target"])
    let samples = 3000
    for index in 0..<samples {
      let labels = LabelSet([("target", "t\(index)"), ("note", String(repeating: "v", count: index % 300))])
      let counts = (0..<21).map { UInt64(($0 * 7919 + index) % 5000) }
      let snapshot = HistogramSnapshot(
        upperBounds: bounds, bucketCounts: counts, sum: Double(index) / 3, count: counts.reduce(0, +) + 1,
        native: index % 2 == 0 ? native : nil)
      exposition.addHistogram(histogramFamily, labels, snapshot)
      exposition.add(counterFamily, labels, Double(index) * 1e9)
    }
    let stream = exposition.stream(as: ProtobufEncoder(), encoders: encoders)
    var body: [UInt8] = []
    var pieces = 0
    while let piece = stream.next() {
      pieces += 1
      #expect(piece.count < 2 * ExpositionStream.pieceBytes)
      body += piece
    }
    #expect(pieces > 10)
    var reader = WireReader(body)
    var families: [String: Int] = [:]
    while !reader.atEnd {
      let length = try reader.varint()
      var family = try reader.sub(Int(length))
      let (name, metrics) = try family.readFamily()
      families[name] = metrics
    }
    #expect(families == ["c_total": samples, "h_seconds": samples])
  }
}

/// Enough of a protobuf reader to walk a MetricFamily and check that every length matches
/// its content and every field has the wire type metrics.proto gives it.
private struct WireReader {
  struct Malformed: Error, CustomStringConvertible {
    let description: String
  }
  let bytes: [UInt8]
  var index: Int
  let end: Int

  init(_ bytes: [UInt8]) { (self.bytes, index, end) = (bytes, 0, bytes.count) }
  private init(_ bytes: [UInt8], _ index: Int, _ end: Int) { (self.bytes, self.index, self.end) = (bytes, index, end) }

  var atEnd: Bool { index == end }

  mutating func varint() throws -> UInt64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      guard index < end, shift < 64 else { throw Malformed(description: "varint past the end at \(index)") }
      let byte = bytes[index]
      index += 1
      value |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { return value }
      shift += 7
    }
  }

  mutating func sub(_ length: Int) throws -> WireReader {
    guard length >= 0, index + length <= end else { throw Malformed(description: "length \(length) past the end at \(index)") }
    defer { index += length }
    return WireReader(bytes, index, index + length)
  }

  /// Reads fields until the end, calling `field` with each number and wire type; a
  /// length-delimited field's content is passed as a reader that must be read to its end.
  mutating func fields(_ field: (Int, Int, inout WireReader) throws -> Void) throws {
    while !atEnd {
      let tag = try varint()
      let (number, type) = (Int(tag >> 3), Int(tag & 7))
      var content: WireReader
      switch type {
      case 0:
        content = WireReader(bytes, index, index)
        _ = try varint()
      case 1: content = try sub(8)
      case 2: content = try sub(Int(try varint()))
      default: throw Malformed(description: "wire type \(type) at \(index)")
      }
      try field(number, type, &content)
    }
  }

  /// A MetricFamily: its name and number of metrics, every nested message checked.
  mutating func readFamily() throws -> (String, Int) {
    var name = ""
    var metrics = 0
    try fields { number, type, content in
      switch (number, type) {
      case (1, 2): name = String(decoding: content.bytes[content.index..<content.end], as: UTF8.self)
      case (2, 2), (3, 0): break
      case (4, 2):
        metrics += 1
        try content.readMetric()
      default: throw Malformed(description: "MetricFamily field \(number)/\(type)")
      }
    }
    return (name, metrics)
  }

  mutating func readMetric() throws {
    try fields { number, type, content in
      switch (number, type) {
      case (1, 2):
        try content.fields { number, type, _ in
          guard type == 2, number == 1 || number == 2 else { throw Malformed(description: "LabelPair field \(number)") }
        }
      case (2, 2), (3, 2):
        try content.fields { number, type, _ in
          guard (number, type) == (1, 1) else { throw Malformed(description: "value field \(number)") }
        }
      case (7, 2): try content.readHistogram()
      default: throw Malformed(description: "Metric field \(number)/\(type)")
      }
    }
  }

  mutating func readHistogram() throws {
    try fields { number, type, content in
      switch (number, type) {
      case (1, 0), (2, 1), (5, 0), (6, 1), (7, 0), (10, 0), (13, 0): break
      case (3, 2):
        try content.fields { number, type, _ in
          guard (number, type) == (1, 0) || (number, type) == (2, 1) else { throw Malformed(description: "Bucket field \(number)") }
        }
      case (9, 2), (12, 2):
        try content.fields { number, type, _ in
          guard type == 0, number == 1 || number == 2 else { throw Malformed(description: "BucketSpan field \(number)") }
        }
      default: throw Malformed(description: "Histogram field \(number)/\(type)")
      }
    }
  }
}

/// One histogram's `metric` field, as the encoder writes it.
private func metricBytes(_ snapshot: HistogramSnapshot, labels: LabelSet = .empty) -> [UInt8] {
  var writer = ByteWriter(capacity: 64)
  ProtobufExposition.writeHistogram(labels, snapshot, size: ProtobufExposition.histogramSize(snapshot), into: &writer)
  return writer.take()
}
