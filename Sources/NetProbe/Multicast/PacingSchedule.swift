/// When the next packet of a paced stream is due: every 1/rate seconds, on a fixed grid so
/// the rate holds over time, without ever catching up in a burst.
///
/// A sender that fell behind (the thread was descheduled, the machine is overloaded)
/// moves the grid to now instead of sending the missed packets back to back: a burst
/// would overflow the receivers' and switches' buffers, and measure our stall as the
/// network's loss. Pure; times are monotonic ns.
struct PacingSchedule: Sendable, Equatable {
  let interval: Int64
  private(set) var nextDue: Int64
  /// How late a packet may be and still keep its place on the grid.
  static let slack: Int64 = 50_000_000

  init(rate: Double, start: Int64) {
    interval = max(1, Int64((1e9 / rate).rounded()))
    nextDue = start
  }

  /// True (and the grid advanced) when a packet is due at `now`.
  mutating func take(now: Int64) -> Bool {
    guard now >= nextDue else { return false }
    if now - nextDue > PacingSchedule.slack {
      nextDue = now
    }
    nextDue += interval
    return true
  }
}
