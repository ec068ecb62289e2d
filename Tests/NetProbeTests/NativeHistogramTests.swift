import Testing
@testable import NetProbe

/// The bucket maths of native histograms, checked against values worked out by hand from
/// the definition: at schema s, bucket i holds (2^((i−1)/2^s), 2^(i/2^s)].
@Suite struct NativeHistogramTests {
  @Test func schemaIsTheCoarsestWhoseGrowthFitsTheFactor() {
    #expect(NativeHistogram.schema(forBucketFactor: 1.1) == 3)  // 2^(1/8) = 1.0905; 2^(1/4) = 1.189 is too wide
    #expect(NativeHistogram.schema(forBucketFactor: 2) == 0)  // exactly 2: schema 0's growth fits
    #expect(NativeHistogram.schema(forBucketFactor: 1.999) == 1)
    #expect(NativeHistogram.schema(forBucketFactor: 4) == -1)
    #expect(NativeHistogram.schema(forBucketFactor: 1.0001) == 8)  // finer than schema 8 exists not
    #expect(NativeHistogram.schema(forBucketFactor: 65_536) == -4)
    #expect(NativeHistogram.schema(forBucketFactor: 1e9) == -4)
    #expect(NativeHistogramSettings().schema == 3)
  }

  @Test func indexAtSchemaZeroBoundaries() {
    // Buckets (2^(i−1), 2^i]: powers of two are upper bounds, inclusive.
    #expect(index(1, 0) == 0)
    #expect(index(1.0.nextUp, 0) == 1)
    #expect(index(2, 0) == 1)
    #expect(index(3, 0) == 2)
    #expect(index(4, 0) == 2)
    #expect(index(0.75, 0) == 0)
    #expect(index(0.5, 0) == -1)
    #expect(index(0.5.nextDown, 0) == -1)
    #expect(index(0.25, 0) == -2)
  }

  @Test func indexAtPositiveSchemas() {
    // Schema 1: √2 splits each power of two; IEEE square root is correctly rounded.
    let root2 = 2.0.squareRoot()
    #expect(index(root2, 1) == 1)
    #expect(index(root2.nextUp, 1) == 2)
    #expect(index(2, 1) == 2)
    // Schema 3, the default: 8 buckets per power of two, so 2 ends bucket 8 and 0.5 bucket −8.
    #expect(index(1, 3) == 0)
    #expect(index(1.0.nextUp, 3) == 1)
    #expect(index(2, 3) == 8)
    #expect(index(2.0.nextUp, 3) == 9)
    #expect(index(0.5, 3) == -8)
    // 1.05 is in (1, 2^(1/8) = 1.0905]; 1.35 in (2^(3/8) = 1.2968, 2^(4/8) = 1.4142].
    #expect(index(1.05, 3) == 1)
    #expect(index(1.35, 3) == 4)
    // A 1 ms RTT: 2^−10 = 0.000977 < 0.001 ≤ 2^(−79/8) = 0.001065, so bucket −79.
    #expect(index(0.001, 3) == -79)
    // Schema 8 at 1 and 2.
    #expect(index(1, 8) == 0 && index(2, 8) == 256 && index(1.0.nextUp, 8) == 1)
  }

  @Test func indexAtNegativeSchemas() {
    // Schema −1: buckets (4^(i−1), 4^i].
    #expect(index(1, -1) == 0)
    #expect(index(1.0.nextUp, -1) == 1)
    #expect(index(2, -1) == 1)
    #expect(index(4, -1) == 1)
    #expect(index(4.0.nextUp, -1) == 2)
    #expect(index(0.3, -1) == 0)
    #expect(index(0.25, -1) == -1)
    // Schema −4: buckets (2^(16(i−1)), 2^(16i)].
    #expect(index(2, -4) == 1 && index(65_536, -4) == 1 && index(65_537, -4) == 2)
  }

  @Test func extremesGetBucketsOfTheirOwn() {
    // The largest Double is in (2^1023, 2^1024]: bucket 1024 at schema 0; +∞ one above.
    #expect(index(.greatestFiniteMagnitude, 0) == 1024)
    #expect(index(.infinity, 0) == 1025)
    #expect(index(.greatestFiniteMagnitude, 3) == 8192)
    #expect(index(.infinity, 3) == 8193)
    // The smallest subnormal is exactly 2^−1074, an upper bound.
    #expect(index(.leastNonzeroMagnitude, 0) == -1074)
    #expect(index(.leastNonzeroMagnitude, 3) == -1074 * 8)
  }

  @Test func upperBoundsInvertTheIndex() {
    #expect(NativeHistogram.upperBound(ofIndex: 0, schema: 3) == 1)
    #expect(NativeHistogram.upperBound(ofIndex: 8, schema: 3) == 2)
    #expect(NativeHistogram.upperBound(ofIndex: -8, schema: 3) == 0.5)
    #expect(NativeHistogram.upperBound(ofIndex: 2, schema: -1) == 16)
    for schema in [-2, 0, 1, 3, 5, 8] {
      for value in [0.0001, 0.00123, 0.017, 0.25, 1.5, 7, 1234.5] {
        let index = index(value, schema)
        #expect(NativeHistogram.upperBound(ofIndex: index - 1, schema: schema) < value, "\(value) at \(schema)")
        #expect(value <= NativeHistogram.upperBound(ofIndex: index, schema: schema), "\(value) at \(schema)")
      }
    }
  }

  @Test func signsZeroAndNaN() {
    var settings = NativeHistogramSettings()
    settings.zeroThreshold = 0.001
    var histogram = NativeHistogram(settings)
    for value in [0.5, 0.5, -0.5, 0.0, -0.0, 0.001, -0.001, 0.0005, .nan, 2] { histogram.record(value) }
    #expect(histogram.positive.indices == [-8, 8] && histogram.positive.counts == [2, 1])
    #expect(histogram.negative.indices == [-8] && histogram.negative.counts == [1])
    // 0, −0, ±threshold and 0.0005 are within the zero bucket; NaN is in no bucket.
    #expect(histogram.zeroCount == 5)

    var exact = NativeHistogramSettings()
    exact.zeroThreshold = 0
    var zeroOnly = NativeHistogram(exact)
    for value in [0.0, -0.0, Double.leastNonzeroMagnitude] { zeroOnly.record(value) }
    #expect(zeroOnly.zeroCount == 2 && zeroOnly.positive.indices == [-1074 * 8])
  }

  @Test func bucketLimitHalvesTheResolution() {
    var settings = NativeHistogramSettings()
    settings.maxBuckets = 4
    var histogram = NativeHistogram(settings)
    for value in [1.0, 1.05, 1.15, 1.25] { histogram.record(value) }
    #expect(histogram.schema == 3 && histogram.positive.indices == [0, 1, 2, 3])
    // A fifth bucket (4): schema 2 merges i into ⌈i/2⌉: 0→0, 1,2→1, 3,4→2.
    histogram.record(1.35)
    #expect(histogram.schema == 2)
    #expect(histogram.positive.indices == [0, 1, 2] && histogram.positive.counts == [1, 2, 2])
    // Negative indices merge the same way: −3 → −1, −2 → −1, −1 → 0.
    var negative = SparseBuckets()
    for index: Int32 in [-3, -2, -1, 1] { negative.add(1, at: index) }
    let halved = negative.halvingResolution()
    #expect(halved.indices == [-1, 0, 1] && halved.counts == [2, 1, 1])
  }

  @Test func bucketLimitStopsAtTheCoarsestSchema() {
    var settings = NativeHistogramSettings()
    settings.maxBuckets = 1
    var histogram = NativeHistogram(settings)
    histogram.record(1)
    histogram.record(0x1p40)
    // At schema −4, 1 is in bucket 0 and 2^40 in (2^32, 2^48], bucket 3: still two buckets.
    #expect(histogram.schema == -4)
    #expect(histogram.positive.indices == [0, 3])
  }

  @Test func unlimitedWithZeroMaxBuckets() {
    var settings = NativeHistogramSettings()
    settings.maxBuckets = 0
    var histogram = NativeHistogram(settings)
    // Each step of 1.1 is wider than schema 3's growth (1.0905): 200 buckets, none merged.
    var value = 1e-6
    for _ in 0..<200 {
      histogram.record(value)
      value *= 1.1
    }
    #expect(histogram.schema == 3 && histogram.positive.count == 200)
  }

  @Test func spansBridgeSmallGaps() {
    var buckets = SparseBuckets()
    for (index, count): (Int32, UInt64) in [(-2, 3), (-1, 1), (2, 4), (6, 2)] { buckets.add(count, at: index) }
    let (spans, deltas) = buckets.spansAndDeltas()
    // −2, −1, then a gap of two (0 and 1) bridged with zero counts, then 2; 6 is three past
    // 3, a span of its own.
    #expect(spans == [BucketSpan(offset: -2, length: 5), BucketSpan(offset: 3, length: 1)])
    #expect(deltas == [3, -2, -1, 0, 4, -2])
    #expect(SparseBuckets().spansAndDeltas().spans.isEmpty)
  }

  @Test func histogramRecordsBothKinds() throws {
    var histogram = Histogram(HistogramLayout(upperBounds: [0.001, 0.01], native: NativeHistogramSettings()))
    for value in [0.0005, 0.002, 0.002, 5] { histogram.record(value) }
    let snapshot = histogram.snapshot
    #expect(snapshot.bucketCounts == [1, 2] && snapshot.count == 4)
    let native = try #require(snapshot.native)
    #expect(native.positive.counts.reduce(0, +) == 4 && native.schema == 3)
    #expect(Histogram(upperBounds: [1]).snapshot.native == nil)
  }

  private func index(_ value: Double, _ schema: Int) -> Int32 {
    NativeHistogram.index(ofMagnitude: value, schema: schema)
  }
}
