/// Sequence accounting shared by every format that numbers its packets: the beacon
/// (64 bits), RTP (16 bits) and a configured field (16, 32 or 64 bits).
///
/// Each number is classified once (`SequenceEvent`) against the highest number seen so
/// far, modulo 2^width, so RTP's 65535 → 0 is in order:
///
/// - ahead by 1: in order; ahead by 2...`maxForwardJump`: a gap, the numbers between are lost;
/// - the highest itself, or behind it within the 1024-number window and already received:
///   a duplicate; behind within the window and not received: late;
/// - anything else (far ahead, or behind by the window or more): a reset — the sender
///   restarted, and counting the distance as loss would report thousands of packets that
///   never existed. Tracking restarts at that number.
///
/// Loss is the sum of the gaps and is never taken back by a late arrival, as Prometheus
/// counters cannot go down: a reordered packet shows as one lost plus one late, and an
/// alert on loss should subtract late if it wants net loss. A single stray number far
/// from the stream costs two resets (to it and back) and no loss.
public struct SequenceTracker: Sendable {
  /// RFC 3550 A.1's MAX_DROPOUT: the largest forward jump still counted as loss.
  public static let defaultMaxForwardJump: UInt64 = 3000
  /// How far behind the highest number a packet is still recognised as late or duplicate.
  public static let window = ReceivedBitmap.capacity

  /// Bits of the sequence number: numbers wrap modulo 2^width.
  public let width: Int
  public let maxForwardJump: UInt64
  private let mask: UInt64
  private var highest: UInt64?
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
  @discardableResult
  public mutating func record(_ sequence: UInt64) -> SequenceEvent {
    let sequence = sequence & mask
    counts.received &+= 1
    guard let highest else {
      start(at: sequence)
      return .first
    }
    let ahead = (sequence &- highest) & mask
    if ahead == 0 {
      counts.duplicate &+= 1
      return .duplicate
    }
    if ahead <= maxForwardJump {
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
      self.highest = sequence
      if ahead == 1 { return .inOrder }
      counts.lost &+= ahead - 1
      return .gap(lost: ahead - 1)
    }
    let behind = (highest &- sequence) & mask
    if behind < UInt64(Self.window) {
      if seen.contains(sequence) {
        counts.duplicate &+= 1
        return .duplicate
      }
      seen.insert(sequence)
      counts.late &+= 1
      return .late
    }
    counts.resets &+= 1
    start(at: sequence)
    return .reset
  }

  /// Counts `sequence` as a reset whatever its distance, and restarts tracking at it:
  /// for restarts known from outside the numbers (an RTP SSRC change, a beacon sender
  /// whose send time moved on while its sequence went back).
  @discardableResult
  public mutating func restart(at sequence: UInt64) -> SequenceEvent {
    counts.received &+= 1
    counts.resets &+= 1
    start(at: sequence & mask)
    return .reset
  }

  private mutating func start(at sequence: UInt64) {
    seen.removeAll()
    seen.insert(sequence)
    highest = sequence
  }
}
