/// The interarrival jitter estimator of RFC 3550 A.8: for consecutive packets i and j,
/// D = (Rj − Ri) − (Sj − Si), the change in transit time, and J += (|D| − J) / 16.
///
/// R is the arrival time converted to the sender's clock units, S the sender's timestamp.
/// Only differences are used, so the two clocks need not agree: jitter is meaningful
/// without synchronised clocks, unlike one-way delay. Differences are taken between
/// consecutive values rather than from absolute "transit" values, which keeps full
/// precision (a 90 kHz arrival time since 1970 would be 1.5e14 units) and makes
/// RTP's 32-bit timestamp wrap-around harmless.
///
/// RTP feeds it 32-bit timestamps at the payload type's clock rate; the beacon feeds it
/// its 64-bit send time in nanoseconds with a clock rate of 1 GHz.
public struct RTPJitter: Sendable, Equatable {
  /// Sender clock units per second.
  public let clockRate: Int
  /// J, in sender clock units.
  public private(set) var jitter: Double = 0
  /// Transit differences folded in so far; J means something from the first on.
  public private(set) var samples: UInt64 = 0
  private var previousArrival: Int64 = 0
  /// The previous sender timestamp: an RTP timestamp's 32 bits, or a beacon's send time.
  private var previousTimestamp: Int64 = 0
  private var started = false

  public init(clockRate: Int) {
    precondition(clockRate > 0, "a clock rate is positive")
    self.clockRate = clockRate
  }

  /// The estimate in seconds (J / clock rate); nil until two packets have been seen.
  public var seconds: Double? { samples > 0 ? jitter / Double(clockRate) : nil }

  /// An RTP packet's 32-bit `timestamp`, received at `arrival` (CLOCK_REALTIME ns).
  /// Consecutive timestamps are compared as a signed 32-bit difference, so the wrap from
  /// 2^32 − 1 to 0 is a step of one.
  public mutating func record(arrival: Int64, timestamp: UInt32) {
    let senderStep = Double(Int32(bitPattern: timestamp &- UInt32(truncatingIfNeeded: previousTimestamp)))
    fold(arrival: arrival, senderStep: senderStep)
    previousTimestamp = Int64(timestamp)
  }

  /// A 64-bit sender time in clock units (a beacon's send time in ns, clock rate 1 GHz),
  /// received at `arrival` (CLOCK_REALTIME ns).
  public mutating func record(arrival: Int64, senderTime: Int64) {
    fold(arrival: arrival, senderStep: senderTime.difference(from: previousTimestamp))
    previousTimestamp = senderTime
  }

  /// Forgets the stream: the next packet starts the estimate again from zero (a new SSRC
  /// or a restarted sender has a timeline of its own).
  public mutating func reset() {
    jitter = 0
    samples = 0
    started = false
  }

  private mutating func fold(arrival: Int64, senderStep: Double) {
    defer {
      previousArrival = arrival
      started = true
    }
    guard started else { return }
    let arrivalStep = arrival.difference(from: previousArrival) * Double(clockRate) / 1e9
    let d = arrivalStep - senderStep
    jitter += (abs(d) - jitter) / 16
    samples &+= 1
  }
}
