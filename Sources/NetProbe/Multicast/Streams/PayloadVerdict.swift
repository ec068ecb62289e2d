/// What `PayloadAnalyzer` made of one datagram, for the counters the engine keeps itself.
public enum PayloadVerdict: Sendable, Equatable {
  /// Decoded and counted (for `raw`, every datagram). `oneWayDelay` is the beacon's send
  /// time to the kernel's receive time in seconds, for the one-way delay histogram; nil
  /// for other formats and for groups without `clock_synchronized`, where the two clocks
  /// disagree by an unknown offset. It may be negative when they disagree anyway.
  case accepted(oneWayDelay: Double?)
  /// Not the group's format (short, wrong magic or version, not RTP, not whole TS
  /// packets, sequence field past the end): counted nowhere by the analyzer, so the
  /// engine counts it as unexpected{reason="malformed"}.
  case malformed
}
