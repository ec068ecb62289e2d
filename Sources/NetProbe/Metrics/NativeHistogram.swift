import Glibc

/// How native histograms are laid out: the operator's `native_histograms` settings.
///
/// The names and defaults are client_golang's (`NativeHistogramBucketFactor`,
/// `NativeHistogramZeroThreshold`, `NativeHistogramMaxBucketNumber`), so a dashboard or a
/// habit made for a Go exporter's native histograms carries over.
public struct NativeHistogramSettings: Sendable, Equatable {
  /// The widest growth from one bucket boundary to the next that the operator accepts; the
  /// schema is the coarsest whose growth does not exceed it (1.1 → schema 3, growth 1.0905).
  public var bucketFactor = 1.1
  /// Observations with an absolute value up to this count in the zero bucket. client_golang's
  /// default, 2⁻¹²⁸: no RTT is that small, but a zero or a denormal from a broken clock lands
  /// there instead of in a bucket of its own far from the others.
  public var zeroThreshold = 0x1p-128
  /// The most populated buckets a histogram keeps; beyond it the resolution halves (see
  /// `NativeHistogram.record`). 0 means no limit. 160 is 20 doublings at schema 3: 1 µs to
  /// 1 s, more than any one target's RTTs spread over.
  public var maxBuckets = 160

  public init() {}

  /// The schema the bucket factor asks for.
  public var schema: Int { NativeHistogram.schema(forBucketFactor: bucketFactor) }
}

/// The sparse, exponential buckets of a Prometheus native histogram (schemas −4…8), kept
/// beside a classic histogram's fixed buckets; sum and count are the classic one's.
///
/// A bucket's index `i` at schema `s` covers (2^((i−1)/2^s), 2^(i/2^s)]: index 0 ends at 1,
/// and every power of two is split into 2^s buckets. Only populated buckets are stored, as
/// sorted arrays of indices and counts: RTTs of one target cluster in a few dozen adjacent
/// buckets, so a binary search and a rare insertion beat a dictionary, and the scrape reads
/// them in order without sorting.
public struct NativeHistogram: Sendable, Equatable {
  /// Lowest and highest schemas Prometheus accepts.
  public static let schemaRange = -4...8

  /// The current schema; lower than the configured one after the bucket limit was hit.
  public private(set) var schema: Int
  public let zeroThreshold: Double
  public let maxBuckets: Int
  /// Observations with |value| ≤ `zeroThreshold`.
  public private(set) var zeroCount: UInt64 = 0
  public private(set) var positive = SparseBuckets()
  public private(set) var negative = SparseBuckets()

  public init(_ settings: NativeHistogramSettings) {
    schema = settings.schema
    zeroThreshold = settings.zeroThreshold
    maxBuckets = settings.maxBuckets
  }

  /// Counts `value` in its bucket. NaN is not counted in any bucket (the classic count and
  /// sum still take it, as client_golang does). When the populated buckets exceed
  /// `maxBuckets`, the resolution halves — the schema drops by one and neighbouring
  /// buckets merge — until they fit or the schema is −4: client_golang's strategy when
  /// neither a reset interval nor a wider zero bucket is configured. We offer neither:
  /// a reset would make the histogram's count disagree with the received counter, and a
  /// wider zero bucket would lump together the fastest replies, the very ones an RTT
  /// histogram is read for.
  public mutating func record(_ value: Double) {
    guard !value.isNaN else { return }
    if value > zeroThreshold {
      positive.add(1, at: Self.index(ofMagnitude: value, schema: schema))
    } else if value < -zeroThreshold {
      negative.add(1, at: Self.index(ofMagnitude: -value, schema: schema))
    } else {
      zeroCount += 1
      return
    }
    while maxBuckets > 0, positive.count + negative.count > maxBuckets, schema > Self.schemaRange.lowerBound {
      positive = positive.halvingResolution()
      negative = negative.halvingResolution()
      schema -= 1
    }
  }

  /// The schema for a bucket factor: the smallest schema whose growth factor 2^(2^−schema)
  /// does not exceed `factor`, clamped to −4…8 (client_golang's `pickSchema`). The growth
  /// of schema s + 1 is the square root of that of s, so walking up from −4 (growth 2¹⁶)
  /// needs no logarithm and is exact at the powers of two.
  public static func schema(forBucketFactor factor: Double) -> Int {
    var schema = schemaRange.lowerBound
    var growth = 65_536.0
    while growth > factor, schema < schemaRange.upperBound {
      schema += 1
      growth = growth.squareRoot()
    }
    return schema
  }

  /// The index of the bucket holding `magnitude` (> 0; +∞ goes one past the bucket of the
  /// largest finite Double). With magnitude = frac × 2^exp, frac in [0.5, 1): for schemas
  /// above 0 the index is the first boundary ≥ frac in the schema's table of 2^s fractions
  /// plus 2^s per power of two; for the others, powers of two are grouped 2^−s at a time.
  public static func index(ofMagnitude magnitude: Double, schema: Int) -> Int32 {
    let isInfinite = magnitude.isInfinite
    let value = isInfinite ? Double.greatestFiniteMagnitude : magnitude
    // Double's significand is in [1, 2) (normalised for subnormals too): halve it for frexp's.
    let fraction = value.significand / 2
    let exponent = Int(value.exponent) + 1
    var index: Int
    if schema > 0 {
      let bounds = boundaryFractions[schema]
      index = firstIndex(in: bounds, notBelow: fraction) + (exponent - 1) * bounds.count
    } else {
      index = fraction == 0.5 ? exponent - 1 : exponent
      let shift = -schema
      index = (index + (1 << shift) - 1) >> shift
    }
    return Int32(index + (isInfinite ? 1 : 0))
  }

  /// The upper boundary of bucket `index` at `schema`: 2^(index / 2^schema).
  public static func upperBound(ofIndex index: Int32, schema: Int) -> Double {
    if schema > 0 {
      let count = 1 << schema
      let (quotient, remainder) = Int(index).quotientAndRemainder(dividingBy: count)
      // Euclidean split, so a negative index still picks a fraction from the table.
      let (exponent, slot) = remainder < 0 ? (quotient - 1, remainder + count) : (quotient, remainder)
      return 2 * boundaryFractions[schema][slot] * exp2(Double(exponent))
    }
    return exp2(Double(Int(index) << -schema))
  }

  /// For each schema above 0, the 2^s fractions 2^(j/2^s − 1), j = 0…2^s − 1, in [0.5, 1):
  /// the boundaries within one power of two. Index 0 (schema 0) is unused.
  static let boundaryFractions: [[Double]] = (0...schemaRange.upperBound).map { schema in
    let count = 1 << schema
    return (0..<count).map { exp2(Double($0) / Double(count) - 1) }
  }

  private static func firstIndex(in sorted: [Double], notBelow value: Double) -> Int {
    var low = 0
    var high = sorted.count
    while low < high {
      let middle = (low + high) / 2
      if sorted[middle] < value { low = middle + 1 } else { high = middle }
    }
    return low
  }
}

/// The populated buckets of one sign of a native histogram, in increasing index order.
public struct SparseBuckets: Sendable, Equatable {
  public private(set) var indices: [Int32] = []
  public private(set) var counts: [UInt64] = []

  public init() {}

  /// How many buckets are populated.
  public var count: Int { indices.count }

  mutating func add(_ increment: UInt64, at index: Int32) {
    // The newest bucket is the likeliest again: check the end before searching.
    if let last = indices.last, last == index {
      counts[counts.count - 1] += increment
      return
    }
    var low = 0
    var high = indices.count
    while low < high {
      let middle = (low + high) / 2
      if indices[middle] < index { low = middle + 1 } else { high = middle }
    }
    if low < indices.count, indices[low] == index {
      counts[low] += increment
    } else {
      indices.insert(index, at: low)
      counts.insert(increment, at: low)
    }
  }

  /// The same observations at the schema one below: bucket i becomes bucket ⌈i/2⌉, whose
  /// range (2^((⌈i/2⌉−1)·2/2^s), 2^(2⌈i/2⌉/2^s)] contains i's.
  func halvingResolution() -> SparseBuckets {
    var merged = SparseBuckets()
    merged.indices.reserveCapacity(indices.count / 2 + 1)
    merged.counts.reserveCapacity(indices.count / 2 + 1)
    for (index, count) in zip(indices, counts) {
      let wider = Int32((Int(index) + 1) >> 1)  // ⌈i/2⌉ for either sign
      if merged.indices.last == wider {
        merged.counts[merged.counts.count - 1] += count
      } else {
        merged.indices.append(wider)
        merged.counts.append(count)
      }
    }
    return merged
  }

  /// The buckets as Prometheus' spans and deltas: a span per run of buckets (a gap of up to
  /// two empty buckets is bridged with zero counts, as client_golang does, since two zero
  /// deltas cost less than a new span), each count given as the difference to the previous
  /// bucket's.
  public func spansAndDeltas() -> (spans: [BucketSpan], deltas: [Int64]) {
    var spans: [BucketSpan] = []
    var deltas: [Int64] = []
    deltas.reserveCapacity(indices.count)
    var previousCount: Int64 = 0
    var nextIndex: Int32 = 0
    for (position, (index, count)) in zip(indices, counts).enumerated() {
      let gap = index - nextIndex
      if position == 0 || gap > 2 {
        spans.append(BucketSpan(offset: gap, length: 0))
      } else {
        for _ in 0..<gap {
          deltas.append(-previousCount)
          previousCount = 0
          spans[spans.count - 1].length += 1
        }
      }
      let value = Int64(count)
      deltas.append(value - previousCount)
      previousCount = value
      spans[spans.count - 1].length += 1
      nextIndex = index + 1
    }
    return (spans, deltas)
  }
}

/// A run of consecutive buckets: its distance from the previous span's end (from index 0
/// for the first span) and its length.
public struct BucketSpan: Sendable, Equatable {
  public var offset: Int32
  public var length: UInt32

  public init(offset: Int32, length: UInt32) {
    self.offset = offset
    self.length = length
  }
}
