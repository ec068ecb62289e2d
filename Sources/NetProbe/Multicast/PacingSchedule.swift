/// When the next packet of a paced stream is due: every 1/rate seconds, on a fixed grid so
/// the rate holds over time, without ever catching up in a burst.
///
/// A sender that fell behind (the thread was descheduled, the machine is overloaded, or the
/// rate is more than the host sustains) sends at most `maxDue` packets for the grid points
/// that passed — the one due and one more — and gives up the others, which it counts as
/// skipped: a burst of the missed packets would overflow the receivers' and switches'
/// buffers and measure our stall as the network's loss. The grid itself never moves, so
/// the beacons of one host keep the phases they were given. Pure; times are monotonic ns.
struct PacingSchedule: Sendable, Equatable {
  let interval: Int64
  private(set) var nextDue: Int64
  /// The most packets sent for one moment: a sender one interval late still makes up that
  /// packet; one further behind skips the rest.
  static let maxDue: Int64 = 2

  /// A schedule whose first packet is due at `start`, shifted by the phase of beacon
  /// number `index` (see `phase(index:interval:)`), so that beacons started together do
  /// not send together.
  init(rate: Double, start: Int64, index: Int = 0) {
    interval = max(1, Int64((1e9 / rate).rounded()))
    nextDue = start + PacingSchedule.phase(index: index, interval: interval)
  }

  /// The offset of beacon `index` within its interval: the fractional part of
  /// index × (√5 − 1) / 2 of the interval. Any number of beacons at one rate are spread
  /// over the interval with no two closer than a third of an even spacing (the golden
  /// ratio's three-gap property), and adding a beacon leaves the others' phases alone.
  static func phase(index: Int, interval: Int64) -> Int64 {
    let golden = 0.618_033_988_749_894_8
    let fraction = (Double(index) * golden).truncatingRemainder(dividingBy: 1)
    return min(interval - 1, Int64(fraction * Double(interval)))
  }

  /// A packet is due at `now`: how many earlier ones were given up for it.
  struct Due: Sendable, Equatable {
    var skipped: Int64
  }

  /// The packet due at `now` (and the grid advanced past it), or nil when none is due yet.
  mutating func take(now: Int64) -> Due? {
    guard now >= nextDue else { return nil }
    let due = (now - nextDue) / interval + 1
    let skipped = max(0, due - PacingSchedule.maxDue)
    nextDue += (skipped + 1) * interval
    return Due(skipped: skipped)
  }
}
