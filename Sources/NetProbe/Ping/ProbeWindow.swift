/// The outcomes of a target's last N probes (an RTT, or a loss), and what the gauges
/// say about them: loss ratio, RTT min / mean / max / standard deviation, and jitter as
/// the mean absolute difference of consecutive RTTs. Pure: no clocks, no sockets.
public struct ProbeWindow: Sendable, Equatable {
  /// RTTs in seconds; NaN marks a lost probe. Float keeps 7 significant digits (0.1 µs
  /// on a 1 s RTT) in half the memory of Double, which matters at 10,000 targets.
  private var outcomes: [Float]
  private var next = 0
  private var filled = 0

  public init(capacity: Int) {
    precondition(capacity > 0, "a window holds at least one probe")
    outcomes = [Float](repeating: .nan, count: capacity)
  }

  public var capacity: Int { outcomes.count }
  public var count: Int { filled }

  /// Changes how many probes the window holds (a reload changed `window`), keeping the
  /// newest outcomes that fit, so the gauges carry on rather than start empty.
  public mutating func resize(to capacity: Int) {
    precondition(capacity > 0, "a window holds at least one probe")
    let start = filled < outcomes.count ? 0 : next
    let kept = min(filled, capacity)
    var resized = [Float](repeating: .nan, count: capacity)
    for offset in 0..<kept {
      resized[offset] = outcomes[(start + filled - kept + offset) % outcomes.count]
    }
    outcomes = resized
    filled = kept
    next = kept % capacity
  }

  /// Records a reply's RTT, or a loss when `rtt` is nil.
  public mutating func record(_ rtt: Double?) {
    outcomes[next] = rtt.map(Float.init) ?? .nan
    next = (next + 1) % outcomes.count
    filled = min(filled + 1, outcomes.count)
  }

  /// The outcomes oldest first (NaN for a loss), for the status page's smoke graph: a copy,
  /// so the caller draws it after the target's lock is released.
  public var orderedOutcomes: [Float] {
    let start = filled < outcomes.count ? 0 : next
    return (0..<filled).map { outcomes[(start + $0) % outcomes.count] }
  }

  public struct Summary: Sendable, Equatable {
    public var probes: Int
    /// nil while no probe in the window has been decided: a target that is not probed (no
    /// socket, no address yet) has no loss to report, and 0 would say it is healthy.
    public var lossRatio: Double?
    /// nil when no probe in the window was answered.
    public var rttMin: Double?
    public var rttMean: Double?
    public var rttMax: Double?
    public var rttStandardDeviation: Double?
    /// Mean |RTTᵢ − RTTᵢ₋₁| over consecutive answered probes; nil with fewer than two.
    public var jitter: Double?
  }

  /// Oldest first, the window's figures. Read under the target's lock at every scrape, so
  /// the ring is walked without a division per outcome.
  public var summary: Summary {
    var received = 0
    var sum = 0.0
    var sumOfSquares = 0.0
    var low = Double.infinity
    var high = -Double.infinity
    var previous = Double.nan
    var differences = 0.0
    var differenceCount = 0
    let start = filled < outcomes.count ? 0 : next
    outcomes.withUnsafeBufferPointer { ring in
      var index = start
      for _ in 0..<filled {
        let stored = ring[index]
        index += 1
        if index == ring.count { index = 0 }
        guard !stored.isNaN else { continue }
        let rtt = Double(stored)
        received += 1
        sum += rtt
        sumOfSquares += rtt * rtt
        low = min(low, rtt)
        high = max(high, rtt)
        if !previous.isNaN {
          differences += abs(rtt - previous)
          differenceCount += 1
        }
        previous = rtt
      }
    }
    guard filled > 0 else { return Summary(probes: 0, lossRatio: nil) }
    var summary = Summary(probes: filled, lossRatio: Double(filled - received) / Double(filled))
    if received > 0 {
      let mean = sum / Double(received)
      summary.rttMin = low
      summary.rttMax = high
      summary.rttMean = mean
      summary.rttStandardDeviation = (max(0, sumOfSquares / Double(received) - mean * mean)).squareRoot()
    }
    if differenceCount > 0 { summary.jitter = differences / Double(differenceCount) }
    return summary
  }
}

/// The RFC 3550 (6.4.1) interarrival jitter estimator applied to RTTs:
/// J += (|D| − J) / 16, D the difference of consecutive RTTs. Smooth and cheap, and the
/// number VoIP and video people know.
public struct SmoothedJitter: Sendable, Equatable {
  public private(set) var value: Double = 0
  private var previous: Double?

  public init() {}

  public mutating func record(_ rtt: Double) {
    if let previous { value += (abs(rtt - previous) - value) / 16 }
    previous = rtt
  }
}

/// What a histogram's buckets are: the classic upper bounds, and the native histogram's
/// settings when native histograms are on. Two histograms with equal layouts count the
/// same things in the same series, so a reload that keeps the layout keeps the counts.
public struct HistogramLayout: Sendable, Equatable {
  public var upperBounds: [Double]
  public var native: NativeHistogramSettings?

  public init(upperBounds: [Double], native: NativeHistogramSettings? = nil) {
    self.upperBounds = upperBounds
    self.native = native
  }
}

/// A histogram with fixed upper bounds: per-bucket counts, sum and count; and beside them,
/// when the layout asks for it, a native histogram of the same observations.
public struct Histogram: Sendable, Equatable {
  public let layout: HistogramLayout
  private(set) var counts: [UInt64]
  private(set) var sum = 0.0
  private(set) var count: UInt64 = 0
  private(set) var native: NativeHistogram?

  public var upperBounds: [Double] { layout.upperBounds }

  public init(upperBounds: [Double]) {
    self.init(HistogramLayout(upperBounds: upperBounds))
  }

  public init(_ layout: HistogramLayout) {
    self.layout = layout
    counts = [UInt64](repeating: 0, count: layout.upperBounds.count)
    native = layout.native.map(NativeHistogram.init)
  }

  public mutating func record(_ value: Double) {
    // Few buckets (16 by default): a linear scan beats a binary search's branches.
    if let index = layout.upperBounds.firstIndex(where: { value <= $0 }) { counts[index] += 1 }
    sum += value
    count += 1
    native?.record(value)
  }

  public var snapshot: HistogramSnapshot { snapshot(withBuckets: true) }

  /// The state for a scrape. The counts are copied here, under the owner's lock, so the
  /// probe loop's next `record` does not copy them instead; without buckets, only the sum
  /// and count (the histogram's `+Inf`, `_sum` and `_count`). The native histogram comes
  /// either way: it is what replaces the classic buckets when they are off.
  func snapshot(withBuckets: Bool) -> HistogramSnapshot {
    guard withBuckets else { return HistogramSnapshot(upperBounds: [], bucketCounts: [], sum: sum, count: count, native: native) }
    let copy = counts.withUnsafeBufferPointer { [UInt64]($0) }
    return HistogramSnapshot(upperBounds: layout.upperBounds, bucketCounts: copy, sum: sum, count: count, native: native)
  }
}
