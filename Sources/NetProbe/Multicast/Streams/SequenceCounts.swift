/// The counters of sequence accounting. All only ever grow, so each maps onto a
/// Prometheus counter directly.
public struct SequenceCounts: Sendable, Equatable {
  /// Packets recorded, whatever their class (duplicates included).
  public var received: UInt64
  /// Sequence numbers skipped by gaps; late arrivals do not take them back.
  public var lost: UInt64
  public var duplicate: UInt64
  public var late: UInt64
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
    SequenceCounts(received: a.received &+ b.received, lost: a.lost &+ b.lost, duplicate: a.duplicate &+ b.duplicate,
                   late: a.late &+ b.late, resets: a.resets &+ b.resets)
  }

  public static func += (a: inout SequenceCounts, b: SequenceCounts) { a = a + b }
}
