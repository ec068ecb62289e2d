/// The counters of sequence accounting. All only ever grow, so each maps onto a
/// Prometheus counter directly.
public struct SequenceCounts: Sendable, Equatable {
  /// Packets recorded, whatever their class (duplicates included).
  public var received: UInt64
  /// Sequence numbers never received: holes given up 64 numbers behind the newest, or
  /// left open at a reset. Nothing takes them back.
  public var lost: UInt64
  /// Packets that brought no new number: copies of a received one, numbers already
  /// counted lost, and single strays. `received − duplicate` are distinct numbers.
  public var duplicate: UInt64
  /// Packets behind a higher number that came in time to fill their hole (never lost).
  public var late: UInt64
  /// Sender restarts.
  public var resets: UInt64

  public init(received: UInt64 = 0, lost: UInt64 = 0, duplicate: UInt64 = 0, late: UInt64 = 0, resets: UInt64 = 0) {
    self.received = received
    self.lost = lost
    self.duplicate = duplicate
    self.late = late
    self.resets = resets
  }

  /// Field by field; wrapping, because a sum of counters must not trap where the
  /// counters themselves would not (2^64 packets is never reached in practice).
  public static func + (a: SequenceCounts, b: SequenceCounts) -> SequenceCounts {
    SequenceCounts(
      received: a.received &+ b.received, lost: a.lost &+ b.lost, duplicate: a.duplicate &+ b.duplicate,
      late: a.late &+ b.late, resets: a.resets &+ b.resets)
  }

  public static func += (a: inout SequenceCounts, b: SequenceCounts) { a = a + b }
}
