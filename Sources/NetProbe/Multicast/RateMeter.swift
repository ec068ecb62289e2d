/// Packets per second over a sliding window of whole seconds.
///
/// Ten one-second buckets in a ring: the current second is still filling, so the rate is
/// the mean of the complete seconds before it, and a stream that stops shows 0 within
/// the window instead of its old rate. The second of the first packet is left out: the
/// stream began somewhere inside it, and counting it would show a rate too low.
struct RateMeter: Sendable, Equatable {
  static let window = 10
  private var buckets = [UInt64](repeating: 0, count: RateMeter.window)
  /// The second the newest bucket belongs to; 0 before the first packet.
  private var currentSecond: Int64 = 0
  /// Complete seconds behind `currentSecond` that the ring holds (up to window − 1).
  private var filled = 0
  /// The second of the first packet.
  private var firstSecond: Int64 = 0

  mutating func record(atSecond second: Int64) {
    advance(to: second)
    guard second == currentSecond else { return }  // a timestamp from the past: already folded in
    buckets[slot(second)] += 1
  }

  /// Mean packets per second over the complete seconds of the window; nil before a whole
  /// second has passed since the first packet.
  func rate(atSecond second: Int64) -> Double? {
    guard currentSecond != 0 else { return nil }
    var copy = self
    copy.advance(to: second)
    let sinceFirst = Int(min(copy.currentSecond - firstSecond - 1, Int64(RateMeter.window)))
    let complete = min(copy.filled, RateMeter.window - 1, sinceFirst)
    guard complete > 0 else { return nil }
    var total: UInt64 = 0
    for offset in 1...complete { total += copy.buckets[copy.slot(copy.currentSecond - Int64(offset))] }
    return Double(total) / Double(complete)
  }

  private func slot(_ second: Int64) -> Int {
    Int(((second % Int64(RateMeter.window)) + Int64(RateMeter.window)) % Int64(RateMeter.window))
  }

  private mutating func advance(to second: Int64) {
    if currentSecond == 0 {
      currentSecond = second
      firstSecond = second
      return
    }
    guard second > currentSecond else { return }
    let steps = min(second - currentSecond, Int64(RateMeter.window))
    for step in 1...steps { buckets[slot(currentSecond + step)] = 0 }
    filled = min(filled + Int(min(second - currentSecond, Int64(RateMeter.window))), RateMeter.window)
    currentSecond = second
  }
}
