/// One scrape's samples, collected family by family, and the bytes they become.
///
/// Collectors add samples in any order (`add`, `addHistogram`); the exposition keeps them
/// as values — each sample a reference to its series' `LabelSet`, which the collector
/// rendered once when the series was made, and a number or a histogram snapshot — about 24
/// bytes a sample instead of the ~120 of its text line. The bytes are made afterwards, a
/// piece at a time, by the encoder of the format the client asked for (`stream(as:)`):
/// families sorted by name, so the output is stable from scrape to scrape (swift-prometheus
/// 2.x's order changes per run, one reason this writer exists; see ARCHITECTURE.md), each
/// family whole. A 45 MB exposition therefore never exists in memory at once: the HTTP
/// server and the push client pull pieces as fast as their peer reads them.
public struct Exposition {
  private var families: [CollectedFamily] = []
  /// Where each family declaration's samples are: `MetricFamily.id` → index + 1 (0 for
  /// none yet). Ids are small and dense (one per declaration, most of them the catalogue's),
  /// so an array, read 15 times per target per scrape, rather than a hashed lookup.
  private var indexByID: [Int32] = []
  /// The same for an id past `directIDs`: declarations made at run time, should there be many.
  private var indexByLargeID: [Int: Int] = [:]
  private static let directIDs = 1 << 16
  private var indexByName: [String: Int] = [:]

  /// The content type of the default format, text 0.0.4.
  public static let contentType = TextEncoder.contentType

  public init() {}

  /// Adds a counter or gauge sample.
  public mutating func add(_ family: MetricFamily, _ labels: LabelSet = .empty, _ value: Double) {
    add(FamilySlot(index: index(of: family)), labels, value)
  }

  /// Adds a histogram series: its buckets (none when the series has its classic buckets
  /// turned off: then only `+Inf`), sum and count.
  public mutating func addHistogram(_ family: MetricFamily, _ labels: LabelSet = .empty, _ histogram: HistogramSnapshot) {
    addHistogram(FamilySlot(index: index(of: family)), labels, histogram)
  }

  /// A family's place in this exposition, for a collector that adds a sample to it per
  /// target: the family is looked up once per scrape instead of once per sample, and not
  /// copied (with its strings and label names) into every call.
  public struct FamilySlot {
    fileprivate let index: Int
  }

  /// The slot of `family`'s samples, with room made for `capacity` more, so that a large
  /// collector's arrays are allocated once rather than grown by doubling.
  public mutating func slot(_ family: MetricFamily, reserving capacity: Int = 0) -> FamilySlot {
    let index = index(of: family)
    if family.type == .histogram {
      families[index].histograms.reserveCapacity(families[index].histograms.count + capacity)
    } else {
      families[index].scalars.reserveCapacity(families[index].scalars.count + capacity)
    }
    return FamilySlot(index: index)
  }

  /// Adds a counter or gauge sample to the family of `slot`.
  public mutating func add(_ slot: FamilySlot, _ labels: LabelSet, _ value: Double) {
    assert(families[slot.index].family.type != .histogram, "\(families[slot.index].family.name): use addHistogram")
    assert(Self.labelsFit(labels, families[slot.index].family), "\(families[slot.index].family.name): labels \(labels.names)")
    families[slot.index].scalars.append(ScalarSample(labels: labels, value: value))
  }

  /// Adds a histogram series to the family of `slot`.
  public mutating func addHistogram(_ slot: FamilySlot, _ labels: LabelSet, _ histogram: HistogramSnapshot) {
    assert(families[slot.index].family.type == .histogram, "\(families[slot.index].family.name) is not a histogram")
    assert(Self.labelsFit(labels, families[slot.index].family), "\(families[slot.index].family.name): labels \(labels.names)")
    families[slot.index].histograms.append(HistogramSample(labels: labels, histogram: histogram))
  }

  /// Whether a series' labels begin with its family's label names (custom labels follow).
  private static func labelsFit(_ labels: LabelSet, _ family: MetricFamily) -> Bool {
    Array(labels.names.prefix(family.labels.count)) == family.labels
  }

  /// The number of samples added so far (a histogram counts once).
  public var sampleCount: Int { families.reduce(0) { $0 + $1.count } }

  /// The families with their samples, sorted by name: what every encoder reads. A family
  /// given a slot but no sample (no target named, gauges turned off) is left out.
  public consuming func sortedFamilies() -> [CollectedFamily] {
    families.filter { $0.count > 0 }.sorted { $0.family.name < $1.family.name }
  }

  /// The body as a stream of pieces in `encoder`'s format, made by `encoders` threads
  /// ahead of the reader, or as it reads when 0 (see `ExpositionStream`).
  public consuming func stream(as encoder: any ExpositionEncoder = TextEncoder(), encoders: Int = 0) -> ExpositionStream {
    ExpositionStream(families: sortedFamilies(), encoder: encoder, encoders: encoders)
  }

  /// The whole exposition in one buffer (for tests and small outputs).
  public consuming func render(as encoder: any ExpositionEncoder = TextEncoder()) -> [UInt8] {
    let body = stream(as: encoder)
    var output: [UInt8] = []
    while let piece = body.next() { output += piece }
    return output
  }

  @inline(__always)
  private mutating func index(of family: MetricFamily) -> Int {
    let id = family.id
    if id < indexByID.count, indexByID[id] != 0 { return Int(indexByID[id]) - 1 }
    return firstIndex(of: family)
  }

  /// The family's index the first time its declaration is seen in this scrape.
  private mutating func firstIndex(of family: MetricFamily) -> Int {
    if family.id >= Self.directIDs, let index = indexByLargeID[family.id] { return index }
    let index: Int
    if let named = indexByName[family.name] {
      assert(families[named].family == family, "two families named \(family.name)")
      index = named
    } else {
      families.append(CollectedFamily(family: family))
      index = families.count - 1
      indexByName[family.name] = index
    }
    if family.id < Self.directIDs {
      if family.id >= indexByID.count { indexByID += repeatElement(0, count: family.id + 1 - indexByID.count) }
      indexByID[family.id] = Int32(index + 1)
    } else {
      indexByLargeID[family.id] = index
    }
    return index
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

/// A counter or gauge sample.
public struct ScalarSample: Sendable {
  public var labels: LabelSet
  public var value: Double
}

/// A histogram series' sample.
public struct HistogramSample: Sendable {
  public var labels: LabelSet
  public var histogram: HistogramSnapshot
}

/// One family's samples in the order they were added. A family holds scalars or
/// histograms, by its type.
public struct CollectedFamily: Sendable {
  public let family: MetricFamily
  public var scalars: [ScalarSample] = []
  public var histograms: [HistogramSample] = []

  public var count: Int { family.type == .histogram ? histograms.count : scalars.count }
}

/// A histogram's state at scrape time: per-bucket (non-cumulative) counts, sum and count.
/// Empty bounds mean a histogram exported without its classic buckets. The native
/// histogram's buckets, when it has one, only the protobuf format carries.
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
