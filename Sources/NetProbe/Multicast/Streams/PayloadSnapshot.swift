/// A stream's payload statistics at one moment, for the exposition: a plain value, cheap
/// to take at every scrape.
public struct PayloadSnapshot: Sendable, Equatable {
  /// True when the format numbers its packets, so the sequence counters mean something:
  /// beacon, rtp and sequence always; mpegts once a datagram came inside RTP (its
  /// sequence is RTP's; plain TS has none). The engine exports the sequence and jitter
  /// series only for sequenced streams.
  public var sequenced: Bool
  /// Sequenced datagrams counted (all classes, duplicates included); malformed ones are not.
  public var received: UInt64
  public var lost: UInt64
  public var duplicate: UInt64
  public var late: UInt64
  public var resets: UInt64
  /// RFC 3550 A.8 interarrival jitter in seconds; nil until two packets with a known
  /// clock have arrived (and for raw, sequence and plain TS streams).
  public var jitterSeconds: Double?
  /// For format mpegts only (zeros before the first packet, so the series exist from
  /// the start); nil for the others.
  public var mpegtsErrors: MPEGTSErrorCounts?
  /// For format mpegts only, like `mpegtsErrors`: the stream's restarts by reason.
  public var mpegtsDiscontinuities: MPEGTSDiscontinuityCounts?

  public init(
    sequenced: Bool, counts: SequenceCounts = SequenceCounts(), jitterSeconds: Double? = nil,
    mpegtsErrors: MPEGTSErrorCounts? = nil, mpegtsDiscontinuities: MPEGTSDiscontinuityCounts? = nil
  ) {
    self.sequenced = sequenced
    received = counts.received
    lost = counts.lost
    duplicate = counts.duplicate
    late = counts.late
    resets = counts.resets
    self.jitterSeconds = jitterSeconds
    self.mpegtsErrors = mpegtsErrors
    self.mpegtsDiscontinuities = mpegtsDiscontinuities
  }

  /// The five sequence counters as one value.
  public var counts: SequenceCounts {
    SequenceCounts(received: received, lost: lost, duplicate: duplicate, late: late, resets: resets)
  }
}
