/// One stream's reception second by second over the last `capacity` seconds, for the
/// status page's per-group graph: packets received, sequence numbers lost, the holes they
/// came in, and the longest silence between two packets.
///
/// A fixed ring of `capacity` seconds (16 bytes each: 1.6 KB a stream, allocated once),
/// updated on the receive path under the stream's lock in constant time but for two rare
/// cases bounded by the ring: a packet after a silence clears the seconds it skipped, and a
/// gap's missing numbers are spread over the seconds they were due in.
///
/// Loss is placed in time when the gap opens, not when the sequence counters settle it (64
/// numbers later, which at 10 packets/s is six seconds on): the missing numbers were due,
/// evenly spaced, between the packet before the hole and the one after it, so a stretch of
/// loss shows in the seconds it happened rather than after them. A reordered packet that
/// fills its hole later (`late`) takes one back from the newest second that has loss; its
/// hole opened at most 64 numbers before, nearly always in that second. A hole filled
/// later than that was counted lost by the counters too, and stays so here.
///
/// Pure: arrival times (CLOCK_REALTIME ns, the kernel's receive stamps) in, seconds out.
struct ReceptionHistory: Sendable, Equatable {
  /// Seconds kept: the span a ping target's smoke graph shows with the default window and
  /// interval (100 probes, one a second), so the two kinds of graph read alike.
  static let capacity = 100

  struct Second: Sendable, Equatable {
    var packets: UInt32 = 0
    /// Sequence numbers missing, in the second they were due.
    var lost: UInt32 = 0
    /// Holes whose first missing number was due in this second.
    var gaps: UInt32 = 0
    /// The longest time between two consecutive packets, in seconds, of the silences that
    /// ended in this second.
    var longestSilence: Float = 0

    /// Adds another stream's same second: a group's graph is its streams summed.
    mutating func add(_ other: Second) {
      packets &+= other.packets
      lost &+= other.lost
      gaps &+= other.gaps
      longestSilence = max(longestSilence, other.longestSilence)
    }
  }

  private var ring = [Second](repeating: Second(), count: ReceptionHistory.capacity)
  /// The second the newest slot of the ring holds; nil before the history starts.
  private(set) var newestSecond: Int64?
  /// The first second the history covers: earlier ones are unknown, not silent.
  private(set) var firstSecond: Int64?
  /// The newest arrival, in ns, for the silence before the next packet.
  private var lastArrival: Int64?

  /// Starts the history at `second` (the join), so the seconds until the first packet
  /// count as silent rather than unknown. Later calls change nothing.
  mutating func start(atSecond second: Int64) {
    guard newestSecond == nil else { return }
    newestSecond = second
    firstSecond = second
  }

  /// One accepted datagram received at `arrival` (ns); `event` is what its sequence
  /// number was (`PayloadAnalyzer.lastSequenceEvent`), nil for formats without one.
  mutating func record(arrival: Int64, event: SequenceEvent?) {
    let second = Self.second(of: arrival)
    start(atSecond: second)
    advance(to: second)
    let previous = lastArrival
    if let previous, arrival > previous {
      let silence = Float(Double(arrival - previous) / 1e9)
      modify(second) { $0.longestSilence = max($0.longestSilence, silence) }
    }
    lastArrival = max(previous ?? arrival, arrival)
    modify(second) { $0.packets &+= 1 }
    switch event {
    case .gap(let missing)?: place(missing, dueAfter: previous ?? arrival, before: arrival)
    case .late?: takeBackOneLost()
    default: break
    }
  }

  /// The `capacity` seconds up to and including `end`, oldest first: nil for a second
  /// before the history began (or older than the ring holds), zeros for a silent one.
  func seconds(through end: Int64) -> [Second?] {
    let first = end - Int64(Self.capacity) + 1
    return (first...end).map { second in
      guard let firstSecond, let newestSecond, second >= firstSecond else { return nil }
      if second > newestSecond { return Second() }
      guard second > newestSecond - Int64(Self.capacity) else { return nil }
      return ring[Self.slot(second)]
    }
  }

  /// Streams' windows of the same seconds, summed; a second is known when any stream
  /// knows it.
  static func merge(_ windows: [[Second?]]) -> [Second?] {
    guard var total = windows.first else { return [] }
    for window in windows.dropFirst() {
      for index in total.indices where index < window.count {
        guard let second = window[index] else { continue }
        if total[index] == nil { total[index] = second } else { total[index]!.add(second) }
      }
    }
    return total
  }

  /// The Unix second of a time in ns (floor, also before 1970).
  static func second(of nanoseconds: Int64) -> Int64 {
    nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
  }

  private static func slot(_ second: Int64) -> Int {
    let capacity = Int64(Self.capacity)
    return Int(((second % capacity) + capacity) % capacity)
  }

  /// Applies `change` to `second`'s slot when the ring still holds it (an arrival stamped
  /// before the newest by more than the ring is simply not drawn).
  private mutating func modify(_ second: Int64, _ change: (inout Second) -> Void) {
    guard let newestSecond, second <= newestSecond, second > newestSecond - Int64(Self.capacity) else { return }
    if let firstSecond, second < firstSecond { self.firstSecond = second }
    change(&ring[Self.slot(second)])
  }

  /// Moves the newest second on to `second`, clearing the slots it passes (at most the ring).
  private mutating func advance(to second: Int64) {
    guard let newest = newestSecond, second > newest else { return }
    let steps = min(second - newest, Int64(Self.capacity))
    for step in 1...steps { ring[Self.slot(second - steps + step)] = Second() }
    newestSecond = second
  }

  /// `missing` numbers due evenly between the packets at `after` and `before` (ns): the
  /// i-th of them at after + (before − after)·i/(missing + 1). Each second gets those due in
  /// it, the hole is counted in the second of its first; seconds the ring no longer holds
  /// get none.
  private mutating func place(_ missing: UInt64, dueAfter after: Int64, before: Int64) {
    guard missing > 0 else { return }
    guard before > after else {
      modify(Self.second(of: before)) {
        $0.lost &+= UInt32(clamping: missing)
        $0.gaps &+= 1
      }
      return
    }
    let span = UInt64(before - after)
    /// How many of the missing numbers were due before `time` (ns): the i with
    /// i < (time − after)·(missing + 1)/span, in exact integers (no rounding at a second's
    /// edge, no overflow however long the silence).
    func dueBefore(_ time: Int64) -> UInt64 {
      guard time > after else { return 0 }
      let elapsed = UInt64(min(time, before) - after)
      let (quotient, remainder) = span.dividingFullWidth(elapsed.multipliedFullWidth(by: missing + 1))
      return min(remainder == 0 ? quotient - 1 : quotient, missing)
    }
    let oldestKept = (newestSecond ?? Self.second(of: before)) - Int64(Self.capacity) + 1
    let from = max(Self.second(of: after), oldestKept)
    let to = Self.second(of: before)
    guard from <= to else { return }
    var placedHole = false
    var counted = dueBefore(from * 1_000_000_000)
    for second in from...to {
      let through = second == to ? missing : dueBefore((second + 1) * 1_000_000_000)
      let due = through - min(counted, through)
      counted = max(counted, through)
      guard due > 0 else { continue }
      modify(second) {
        $0.lost &+= UInt32(clamping: due)
        if !placedHole { $0.gaps &+= 1 }
      }
      placedHole = true
    }
  }

  /// A late packet filled a hole counted here when it opened: one lost number less, from
  /// the newest second that has any.
  private mutating func takeBackOneLost() {
    guard let newest = newestSecond else { return }
    for back in 0..<Int64(Self.capacity) {
      let index = Self.slot(newest - back)
      if ring[index].lost > 0 {
        ring[index].lost -= 1
        return
      }
    }
  }
}
