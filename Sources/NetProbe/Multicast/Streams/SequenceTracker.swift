/// Sequence accounting shared by every format that numbers its packets: the beacon
/// (64 bits), RTP (16 bits) and a configured field (16, 32 or 64 bits).
///
/// Each number is classified once (`SequenceEvent`) against the highest number seen so
/// far, modulo 2^width, so RTP's 65535 → 0 is in order:
///
/// - ahead by 1: in order; ahead by 2...`maxForwardJump`: a gap, the numbers between are
///   missing;
/// - the highest itself, or behind it within the 1024-number window and already received:
///   a duplicate;
/// - behind within the window, not received, and its hole still open: late; its hole
///   already counted lost (later than the reorder horizon): duplicate, since it brings no
///   number the accounting has not already counted;
/// - anything else (far ahead, or behind by the window or more): a stray, counted nowhere
///   until the next number decides. If that number follows it (RFC 3550 A.1's probation),
///   the sender restarted: one reset, and tracking restarts at the stray. Otherwise the
///   stray was a single old or corrupt datagram, which brings no number either: a
///   duplicate, and the stream goes on as before (resetting at once would make the next
///   normal packet a gap of thousands that never existed).
///
/// Lost counts sequence numbers (holes), the other classes datagrams: a missing number is
/// counted lost only once it falls `reorderHorizon` (64) numbers behind the highest, or at
/// a reset, still not received. So a reordered packet counts late and never lost; one
/// later than that was counted lost before it came and counts duplicate, never late as
/// well. Every datagram is received and at most one of duplicate, late or reset, and no
/// counter is ever taken back (Prometheus counters cannot go down). `received − duplicate`
/// is the count of distinct numbers received, none of them counted lost, so
/// `lost / (lost + received − duplicate)` is the stream's loss ratio. Loss is reported up
/// to 64 packets after the gap; holes still pending at a reset are lost.
public struct SequenceTracker: Sendable {
  /// RFC 3550 A.1's MAX_DROPOUT: the largest forward jump still counted as loss.
  public static let defaultMaxForwardJump: UInt64 = 3000
  /// How far behind the highest number a packet is still recognised as late or duplicate.
  public static let window = ReceivedBitmap.capacity
  /// How far behind the highest number a missing number is given up and counted lost.
  public static let reorderHorizon: UInt64 = 64

  /// Bits of the sequence number: numbers wrap modulo 2^width.
  public let width: Int
  public let maxForwardJump: UInt64
  private let mask: UInt64
  private var highest: UInt64?
  /// After a stray: the number that, arriving next, confirms a sender restart. The stray
  /// itself is counted (reset or duplicate) when that next number comes.
  private var probation: UInt64?
  /// Numbers tracked since the last start, up to the window: a number behind by less was
  /// tracked, so, when missing and no longer pending, it was counted lost.
  private var span: UInt64 = 0
  /// Numbers in (highest − pending, highest] are not yet decided: a missing one there may
  /// still arrive late. At most `reorderHorizon`.
  private var pending: UInt64 = 0
  private var seen = ReceivedBitmap()
  public private(set) var counts = SequenceCounts()

  /// - Parameters:
  ///   - width: 16 to 64 bits.
  ///   - maxForwardJump: at least 1, and short of the sequence space minus the window, so
  ///     that "ahead" and "behind" never overlap.
  public init(width: Int, maxForwardJump: UInt64 = SequenceTracker.defaultMaxForwardJump) {
    precondition((16...64).contains(width), "sequence width must be 16 to 64 bits")
    let mask: UInt64 = width == 64 ? .max : (1 << UInt64(width)) - 1
    precondition(maxForwardJump >= 1 && maxForwardJump < mask - UInt64(Self.window), "forward jump out of range")
    self.width = width
    self.mask = mask
    self.maxForwardJump = maxForwardJump
  }

  public var received: UInt64 { counts.received }
  public var lost: UInt64 { counts.lost }
  public var duplicate: UInt64 { counts.duplicate }
  public var late: UInt64 { counts.late }
  public var resets: UInt64 { counts.resets }

  /// The highest number seen since tracking (re)started; nil before the first.
  public var highestSequence: UInt64? { highest }

  /// True when `sequence` would move the highest number on (in order or a gap), or
  /// start tracking. The beacon uses it with the send time to tell a restarted sender
  /// (behind, but sent later than anything seen) from a late or duplicate packet.
  public func advances(_ sequence: UInt64) -> Bool {
    guard let highest else { return true }
    let ahead = (sequence &- highest) & mask
    return ahead >= 1 && ahead <= maxForwardJump
  }

  /// Classifies `sequence` (taken modulo 2^width) and counts it.
  ///
  /// `hostDropped`: datagrams the socket dropped for want of buffer space since the one
  /// before this (SO_RXQ_OVFL's count grows when a datagram is queued after drops, so they
  /// came just before this one). When this number opens a gap, that many of its newest
  /// missing numbers are the host's drops, counted in socket_drops_total: they are not the
  /// network's loss, so they count neither lost nor received.
  @discardableResult
  public mutating func record(_ sequence: UInt64, hostDropped: UInt64 = 0) -> SequenceEvent {
    let sequence = sequence & mask
    counts.received &+= 1
    guard let highest else {
      start(at: sequence)
      return .first
    }
    if let expected = probation {
      probation = nil
      if sequence == expected {
        // Two consecutive numbers far from the stream: the sender restarted.
        counts.resets &+= 1
        closeOut()
        start(at: (sequence &- 1) & mask)
        seen.insert(sequence)
        self.highest = sequence
        pending = 2
        span = 2
        return .reset
      }
      // The stray stood alone: an old or corrupt datagram, no number of the stream.
      counts.duplicate &+= 1
    }
    let ahead = (sequence &- highest) & mask
    if ahead == 0 {
      counts.duplicate &+= 1
      return .duplicate
    }
    if ahead <= maxForwardJump {
      let excused = min(hostDropped, ahead - 1)
      decide(advancingFrom: highest, by: ahead, excused: excused)
      if ahead >= UInt64(Self.window) {
        seen.removeAll()
      } else {
        // Forget the numbers the window slides past, so their slots read as not received.
        var skipped = highest
        for _ in 0..<ahead {
          skipped = (skipped &+ 1) & mask
          seen.remove(skipped)
        }
      }
      seen.insert(sequence)
      // The host's drops read as received within the window: never counted lost, and a
      // copy arriving after all (it was not dropped) brings no new number.
      var dropped = sequence
      for _ in 0..<min(excused, UInt64(Self.window) - 1) {
        dropped = (dropped &- 1) & mask
        seen.insert(dropped)
      }
      self.highest = sequence
      span = min(UInt64(Self.window), span + ahead)
      let missing = ahead - 1 - excused
      return missing == 0 ? .inOrder : .gap(missing: missing)
    }
    let behind = (highest &- sequence) & mask
    if behind < UInt64(Self.window) {
      if seen.contains(sequence) {
        counts.duplicate &+= 1
        return .duplicate
      }
      seen.insert(sequence)
      if behind >= pending && behind < span {
        // Tracked, given up and counted lost before it came.
        counts.duplicate &+= 1
        return .tooLate
      }
      counts.late &+= 1
      return .late
    }
    // Far from the stream: a stray until the next number says what it was.
    probation = (sequence &+ 1) & mask
    return .stray
  }

  /// Counts `sequence` as a reset whatever its distance, and restarts tracking at it:
  /// for restarts known from outside the numbers (an RTP SSRC change, a beacon sender
  /// whose send time moved on while its sequence went back).
  @discardableResult
  public mutating func restart(at sequence: UInt64) -> SequenceEvent {
    counts.received &+= 1
    counts.resets &+= 1
    closeOut()
    start(at: sequence & mask)
    return .reset
  }

  /// The receiver was not listening (a join latency test's leave, an interface that was
  /// down): numbers sent meanwhile were never ours to receive. The holes from before
  /// count lost, and the next number starts tracking again — no gap, no reset.
  public mutating func resume() {
    closeOut()
    highest = nil
    seen.removeAll()
  }

  private mutating func start(at sequence: UInt64) {
    seen.removeAll()
    seen.insert(sequence)
    highest = sequence
    pending = 1
    span = 1
  }

  /// The highest moves from `highest` by `ahead`: the numbers that leave the horizon are
  /// decided, and those not received counted lost, except the newest `excused` numbers of
  /// the gap (the host's drops). Runs before the bitmap forgets slots, while every
  /// undecided number at or below `highest` can still be looked up.
  private mutating func decide(advancingFrom highest: UInt64, by ahead: UInt64, excused: UInt64) {
    let total = pending + ahead
    let kept = min(Self.reorderHorizon, total)
    let leaving = total - kept
    // The oldest `min(leaving, pending)` of them were undecided numbers up to `highest`.
    let looked = min(leaving, pending)
    var lost: UInt64 = 0
    var number = (highest &- (pending &- 1)) & mask
    for _ in 0..<looked {
      if !seen.contains(number) { lost += 1 }
      number = (number &+ 1) & mask
    }
    // The rest are the oldest numbers of the gap just opened: never received, unless they
    // are among its newest `excused`, which the host dropped.
    let gapLeaving = leaving - looked
    let overlap = (gapLeaving + excused).subtractingReportingOverflow(ahead - 1)
    let excusedLeaving = overlap.overflow ? 0 : overlap.partialValue
    counts.lost &+= lost + gapLeaving - excusedLeaving
    pending = kept
  }

  /// Ends the stream (a reset, or a tracker given up): the holes still undecided can no
  /// longer arrive and are counted lost, and a stray no number followed stood alone.
  mutating func closeOut() {
    if probation != nil {
      probation = nil
      counts.duplicate &+= 1
    }
    guard let highest else { return }
    var number = highest
    for _ in 0..<pending {
      if !seen.contains(number) { counts.lost &+= 1 }
      number = (number &- 1) & mask
    }
    pending = 0
  }
}
