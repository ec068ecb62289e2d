/// What one sequence number was, relative to those seen before it. Every packet is
/// exactly one of these, so loss, duplicates, reordering and restarts are never mixed in
/// one counter (the mistake of exporters that count "out of order" for all of them).
public enum SequenceEvent: Sendable, Hashable {
  /// The first number seen: tracking starts here.
  case first
  /// The next expected number (the highest so far plus one, modulo the width).
  case inOrder
  /// Ahead of the expected number: the `missing` numbers in between are counted lost
  /// unless they arrive before falling `SequenceTracker.reorderHorizon` behind.
  case gap(missing: UInt64)
  /// A number already received within the duplicate window.
  case duplicate
  /// Behind the highest, not received before, and in time: its hole was still open, so it
  /// is a reordered packet and never lost.
  case late
  /// Behind the highest and not received before, but later than the reorder horizon: its
  /// number was already counted lost, so it counts duplicate (it brings no number the
  /// accounting has not counted) and not late as well.
  case tooLate
  /// Too far from the highest to be loss or reordering, and counted when the next number
  /// says what it was: a restart (one reset) if that number follows it; otherwise a
  /// single old or corrupt datagram (a duplicate).
  case stray
  /// The sender restarted: the number after a stray followed it (or, for RTP, the SSRC
  /// changed). Tracking restarts here; the distance is not counted as loss.
  case reset
}
