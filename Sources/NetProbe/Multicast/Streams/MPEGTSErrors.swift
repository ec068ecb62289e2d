/// The MPEG transport stream errors counted per stream, from ETSI TR 101 290's first
/// priority, and their `type` label values.
public enum MPEGTSErrorType: String, Sendable, CaseIterable {
  /// 1.4 Continuity_count_error: a packet with payload whose continuity counter is not
  /// the previous one plus one (modulo 16), or a third copy of a packet.
  case continuity
  /// 1.2 Sync_byte_error: a packet not starting with 0x47.
  case syncByte = "sync_byte"
  /// 2.1 Transport_error: the transport_error_indicator set by a demodulator or
  /// gateway that could not correct the packet.
  case transportError = "transport_error"
  /// 1.3 PAT_error: no PAT (PID 0, table_id 0x00) for more than 0.5 s.
  case patMissing = "pat_missing"
}

/// Counts of each `MPEGTSErrorType`, as fixed fields rather than a dictionary so that a
/// snapshot is a plain value that costs no allocation.
public struct MPEGTSErrorCounts: Sendable, Equatable {
  public var continuity: UInt64 = 0
  public var syncByte: UInt64 = 0
  public var transportError: UInt64 = 0
  public var patMissing: UInt64 = 0

  public init() {}

  public subscript(type: MPEGTSErrorType) -> UInt64 {
    get {
      switch type {
      case .continuity: continuity
      case .syncByte: syncByte
      case .transportError: transportError
      case .patMissing: patMissing
      }
    }
    set {
      switch type {
      case .continuity: continuity = newValue
      case .syncByte: syncByte = newValue
      case .transportError: transportError = newValue
      case .patMissing: patMissing = newValue
      }
    }
  }
}

/// Why a transport stream started again: the `reason` label values of the discontinuities
/// counter. A discontinuity restarts every PID's continuity check and the PAT clock, so an
/// encoder restart is counted here and not as continuity errors (TR 101 290 treats a
/// signalled or evident restart as a discontinuity, not a Continuity_count_error).
public enum MPEGTSDiscontinuityReason: String, Sendable, CaseIterable {
  /// The stream resumed after more silence than the group's `restart_gap`.
  case silence
  /// A new RTP SSRC after the first: a restarted sender (RFC 3550 8.2).
  case ssrcChange = "ssrc_change"
  /// A packet with the adaptation field's discontinuity_indicator set, on a PID whose
  /// counter was being followed (one count per such packet).
  case indicator
}

/// Counts of each `MPEGTSDiscontinuityReason`.
public struct MPEGTSDiscontinuityCounts: Sendable, Equatable {
  public var silence: UInt64 = 0
  public var ssrcChange: UInt64 = 0
  public var indicator: UInt64 = 0

  public init() {}

  public subscript(reason: MPEGTSDiscontinuityReason) -> UInt64 {
    get {
      switch reason {
      case .silence: silence
      case .ssrcChange: ssrcChange
      case .indicator: indicator
      }
    }
    set {
      switch reason {
      case .silence: silence = newValue
      case .ssrcChange: ssrcChange = newValue
      case .indicator: indicator = newValue
      }
    }
  }

  /// Every reason together.
  public var total: UInt64 { silence &+ ssrcChange &+ indicator }
}
