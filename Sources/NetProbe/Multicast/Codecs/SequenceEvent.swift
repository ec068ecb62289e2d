/// What one sequence number was, relative to those seen before it. Every packet is
/// exactly one of these, so loss, duplicates, reordering and restarts are never mixed in
/// one counter (the mistake of exporters that count "out of order" for all of them).
public enum SequenceEvent: Sendable, Equatable {
  /// The first number seen: tracking starts here.
  case first
  /// The next expected number (the highest so far plus one, modulo the width).
  case inOrder
  /// Ahead of the expected number: the `lost` numbers in between are counted lost.
  case gap(lost: UInt64)
  /// A number already received within the duplicate window.
  case duplicate
  /// Behind the highest and not received before: a reordered packet. Its number was
  /// counted lost when the gap was seen, and stays so (counters never go down).
  case late
  /// Too far from the highest to be loss or reordering: the sender restarted (or, for
  /// RTP, changed SSRC). Tracking restarts at this number and no loss is counted.
  case reset
}
