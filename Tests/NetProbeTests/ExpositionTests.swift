import Foundation
import Testing
@testable import NetProbe

@Suite struct ExpositionTests {
  static let counter = MetricFamily("test_packets_total", .counter, "Packets.\nSecond line with \\ backslash.", labels: ["target"])
  static let gauge = MetricFamily("test_a_ratio", .gauge, "A ratio.")
  static let histogram = MetricFamily("test_rtt_seconds", .histogram, "RTT.", labels: ["target"])

  @Test func rendersSortedFamiliesWithHelpAndType() {
    var exposition = Exposition()
    exposition.add(Self.counter, LabelSet([("target", "a")]), 3)
    exposition.add(Self.gauge, .empty, 0.25)
    exposition.add(Self.counter, LabelSet([("target", "b")]).appending([("site", "x")]), 1e20)
    let text = String(decoding: exposition.render(), as: UTF8.self)
    #expect(
      text == """
        # HELP test_a_ratio A ratio.
        # TYPE test_a_ratio gauge
        test_a_ratio 0.25
        # HELP test_packets_total Packets.\\nSecond line with \\\\ backslash.
        # TYPE test_packets_total counter
        test_packets_total{target="a"} 3
        test_packets_total{target="b",site="x"} 1e+20

        """)
  }

  @Test func slotsAddToTheSameFamilyAndAnEmptyOneIsLeftOut() {
    var bySlot = Exposition()
    let counter = bySlot.slot(Self.counter, reserving: 2)
    _ = bySlot.slot(Self.gauge, reserving: 10)  // never given a sample
    bySlot.add(counter, LabelSet([("target", "a")]), 3)
    bySlot.add(Self.counter, LabelSet([("target", "b")]), 4)
    var byFamily = Exposition()
    byFamily.add(Self.counter, LabelSet([("target", "a")]), 3)
    byFamily.add(Self.counter, LabelSet([("target", "b")]), 4)
    let text = bySlot.render()
    #expect(text == byFamily.render())
    #expect(!String(decoding: text, as: UTF8.self).contains("test_a_ratio"))
  }

  @Test func escapesLabelValues() {
    var exposition = Exposition()
    exposition.add(Self.gauge, LabelSet([("v", "a\"b\\c\nd")]), 1)
    let text = String(decoding: exposition.render(), as: UTF8.self)
    #expect(text.contains(#"test_a_ratio{v="a\"b\\c\nd"} 1"#))
  }

  /// A histogram without labels, and one exported without its classic buckets (the
  /// `classic_buckets: false` switch): `+Inf`, `_sum` and `_count` only.
  @Test func rendersUnlabelledHistogramsAndHistogramsWithoutBuckets() {
    var exposition = Exposition()
    let bare = MetricFamily("test_bare_seconds", .histogram, "Bare.")
    exposition.addHistogram(bare, .empty, HistogramSnapshot(upperBounds: [0.5], bucketCounts: [1], sum: 0.25, count: 2))
    exposition.addHistogram(
      Self.histogram, LabelSet([("target", "a")]), HistogramSnapshot(upperBounds: [], bucketCounts: [], sum: 1.5, count: 3))
    let text = String(decoding: exposition.render(), as: UTF8.self)
    #expect(
      text == """
        # HELP test_bare_seconds Bare.
        # TYPE test_bare_seconds histogram
        test_bare_seconds_bucket{le="0.5"} 1
        test_bare_seconds_bucket{le="+Inf"} 2
        test_bare_seconds_sum 0.25
        test_bare_seconds_count 2
        # HELP test_rtt_seconds RTT.
        # TYPE test_rtt_seconds histogram
        test_rtt_seconds_bucket{target="a",le="+Inf"} 3
        test_rtt_seconds_sum{target="a"} 1.5
        test_rtt_seconds_count{target="a"} 3

        """)
  }

  /// The stream's pieces, joined, are the whole exposition; each piece is near the piece
  /// size (a family is split across pieces), made inline or by encoder threads alike.
  @Test(arguments: [0, 1, 2, 3])
  func streamsInPiecesThatJoinToTheWhole(encoders: Int) {
    func make() -> Exposition {
      var exposition = Exposition()
      for index in 0..<20_000 {
        let labels = LabelSet([("target", "t\(index)")])
        exposition.add(Self.counter, labels, Double(index))
        exposition.addHistogram(
          Self.histogram, labels, HistogramSnapshot(upperBounds: [0.001, 0.01], bucketCounts: [1, 2], sum: 0.5, count: 4))
      }
      return exposition
    }
    let whole = make().render()
    let stream = make().stream(encoders: encoders)
    #expect(stream.isMadeAhead == (encoders > 0))
    var pieces: [[UInt8]] = []
    while let piece = stream.next() { pieces.append(piece) }
    #expect(Array(pieces.joined()) == whole)
    #expect(pieces.count > 10)
    for piece in pieces.dropLast() {
      #expect(piece.count >= ExpositionStream.pieceBytes / 2 && piece.count < ExpositionStream.pieceBytes * 2)
    }
    #expect(stream.next() == nil)
  }

  /// A reader that goes away mid-body (a client gone) stops the encoder threads; a stream of
  /// nothing ends at once.
  @Test func anAbandonedOrEmptyStreamEnds() {
    var exposition = Exposition()
    for index in 0..<50_000 { exposition.add(Self.counter, LabelSet([("target", "t\(index)")]), Double(index)) }
    var stream: ExpositionStream? = exposition.stream(encoders: 2)
    #expect(stream?.next()?.isEmpty == false)
    stream = nil
    #expect(Exposition().stream(encoders: 2).next() == nil)
    #expect(Exposition().stream().next() == nil)
  }

  @Test func rendersHistogramsCumulatively() {
    var exposition = Exposition()
    let snapshot = HistogramSnapshot(upperBounds: [0.001, 0.01], bucketCounts: [2, 3], sum: 0.0421, count: 6)
    exposition.addHistogram(Self.histogram, LabelSet([("target", "a")]), snapshot)
    let text = String(decoding: exposition.render(), as: UTF8.self)
    #expect(
      text == """
        # HELP test_rtt_seconds RTT.
        # TYPE test_rtt_seconds histogram
        test_rtt_seconds_bucket{target="a",le="0.001"} 2
        test_rtt_seconds_bucket{target="a",le="0.01"} 5
        test_rtt_seconds_bucket{target="a",le="+Inf"} 6
        test_rtt_seconds_sum{target="a"} 0.0421
        test_rtt_seconds_count{target="a"} 6

        """)
  }

  @Test(arguments: [
    (1.0, "1"), (0.0, "0"), (-3.0, "-3"), (0.5, "0.5"), (1e-05, "1e-05"), (Double.infinity, "+Inf"),
    (-Double.infinity, "-Inf"), (Double.nan, "NaN"), (1e15, "1000000000000000"), (1e300, "1e+300"), (123456789.0, "123456789"),
  ])
  func formatsValues(value: Double, text: String) {
    #expect(Exposition.formatValue(value) == text)
  }

  @Test func registryRendersEveryCollectorAndForgetsRemovedOnes() {
    struct Fixed: MetricsCollector {
      let value: Double
      func collect(into exposition: inout Exposition) { exposition.add(ExpositionTests.gauge, .empty, value) }
    }
    let registry = MetricsRegistry()
    registry.register("a", Fixed(value: 1))
    #expect(String(decoding: registry.render(), as: UTF8.self).hasSuffix("test_a_ratio 1\n"))
    registry.register("a", Fixed(value: 2))
    #expect(String(decoding: registry.render(), as: UTF8.self).hasSuffix("test_a_ratio 2\n"))
    registry.unregister("a")
    #expect(registry.render().isEmpty)
  }

  @Test func catalogueNamesFollowTheConventions() {
    var seen = Set<String>()
    for family in Catalogue.all {
      #expect(seen.insert(family.name).inserted, "\(family.name) declared twice")
      #expect(family.name.range(of: "^[a-z_][a-z0-9_]*$", options: .regularExpression) != nil, "\(family.name)")
      #expect(!family.help.isEmpty, "\(family.name) has no help")
      #expect((family.type == .counter) == family.name.hasSuffix("_total"), "\(family.name): _total iff counter")
      #expect(!family.name.contains("milliseconds") && !family.name.contains("percent"), "\(family.name): use base units")
      for label in family.labels { #expect(ConfigValues.isLabelName(label), "\(family.name): \(label)") }
    }
  }

  /// The README's metrics reference lists exactly the catalogue: every family, with its type
  /// and labels, and nothing that is not in the catalogue.
  @Test func readmeDocumentsEveryMetric() throws {
    let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    var documented: [String: (type: String, labels: String)] = [:]
    for line in readme.split(separator: "\n") where line.hasPrefix("| `") {
      let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
      guard cells.count >= 4, cells[0].hasPrefix("`"), let name = cells[0].split(separator: "`").first,
        ["counter", "gauge", "histogram"].contains(cells[1])
      else { continue }
      documented[String(name)] = (cells[1], cells[2].replacingOccurrences(of: "`", with: ""))
    }
    for family in Catalogue.all {
      let entry = documented.removeValue(forKey: family.name)
      #expect(entry != nil, "README lacks \(family.name)")
      #expect(entry?.type == family.type.rawValue, "README type of \(family.name)")
      let labels = family.labels.isEmpty ? "" : family.labels.joined(separator: ", ")
      #expect(entry?.labels.hasPrefix(labels) == true, "README labels of \(family.name): want \(labels)")
    }
    #expect(documented.isEmpty, "README documents metrics not in the catalogue: \(documented.keys.sorted())")
  }
}
