/// What one sequence number was, relative to those seen before it. Every packet is
/// exactly one of these, so loss, duplicates, reordering and restarts are never mixed in
/// one counter (the mistake of exporters that count "out of order" for all of them).
public enum SequenceEvent: Sendable, Equatable {
  /// The first number seen: tracking starts here.
  case first
  /// The next expected number (the highest so far plus one, modulo the width).
  case inOrder
  /// Ahead of the expected number: the `missing` numbers in between are counted lost
  /// unless they arrive before falling `SequenceTracker.reorderHorizon` behind.
  case gap(missing: UInt64)
  /// A number already received within the duplicate window.
  case duplicate
  /// Behind the highest and not received before: a reordered packet. Not lost, unless it
  /// is later than the reorder horizon (then it was counted lost before it came).
  case late
  /// Too far from the highest to be loss or reordering, counted late. A restart if the
  /// next number follows it; otherwise a single old or corrupt packet.
  case stray
  /// The sender restarted: the number after a stray followed it (or, for RTP, the SSRC
  /// changed). Tracking restarts here; the distance is not counted as loss.
  case reset
}
