/// Why a received ICMP message was not counted as a reply to any probe.
public enum UnexpectedReason: String, Sendable, CaseIterable {
  /// Too short, a bad checksum, or an IP header that does not parse.
  case malformed
  /// An echo reply that is not ours: another program's identifier or payload format.
  case foreign
  /// Our identifier but not our per-process nonce: an earlier run, or a forgery.
  case badNonce = "bad_nonce"
  /// Our nonce, but a slot or sequence we have no record of sending, or a send time
  /// that does not match the one we sent.
  case unknownProbe = "unknown_probe"
  /// Right probe, wrong sender: the reply did not come from the target's address.
  case wrongSource = "wrong_source"
  /// Right probe, but the payload differs from what we sent.
  case corrupt
}

/// Reads an ICMP message from a ping socket and decides whether it may be a reply to one of
/// our probes. Pure, so that every forged, foreign and corrupted case is unit-tested.
public struct ReplyMatcher: Sendable {
  public enum Result: Sendable, Equatable {
    /// An echo reply carrying our nonce: `slot` and `payload` say which probe it answers.
    case candidate(payload: ProbePayload, icmpSequence: UInt16, payloadLength: Int)
    /// Not an echo reply (our own requests seen on loopback, errors for the path engine).
    case ignored
    case unexpected(UnexpectedReason)
  }

  public let family: IPAddress.Family
  public let kind: ICMPSocketKind
  public let nonce: UInt64
  /// Whether this matcher serves the path tracer, whose probes have the trace flag in
  /// their slot and a flow-compensation word after the header. Each engine ignores the
  /// other's replies (on raw sockets both see all of them).
  public let forTracer: Bool

  public init(family: IPAddress.Family, kind: ICMPSocketKind, nonce: UInt64, forTracer: Bool = false) {
    self.family = family
    self.kind = kind
    self.nonce = nonce
    self.forTracer = forTracer
  }

  /// `identifiers`: the ICMP identifiers we use (raw sockets only; the kernel rewrites them
  /// on datagram sockets and delivers only replies to ours). The trace bit is ignored here:
  /// each engine's replies carry this process's identifier with or without it, and the
  /// payload's slot says which engine they are for.
  public func match(_ message: ArraySlice<UInt8>, identifiers: (UInt16, UInt16)) -> Result {
    guard let echo = ICMPEcho.decode(message) else { return .unexpected(.malformed) }
    let replyType = family == .ip4 ? ICMPType.echoReplyV4 : ICMPType.echoReplyV6
    guard echo.type == replyType else { return .ignored }
    guard echo.code == 0 else { return .unexpected(.malformed) }
    if family == .ip4 && kind == .raw && !InternetChecksum.isValid(message) { return .unexpected(.malformed) }
    let engineFree = ~ProbePayload.traceIdentifierBit
    if kind == .raw && echo.identifier & engineFree != identifiers.0 & engineFree
      && echo.identifier & engineFree != identifiers.1 & engineFree
    {
      return .unexpected(.foreign)
    }
    guard let payload = ProbePayload.decode(echo.payload) else { return .unexpected(.foreign) }
    guard payload.nonce == nonce else { return .unexpected(.badNonce) }
    guard (payload.slot & ProbePayload.traceSlotFlag != 0) == forTracer else { return .ignored }
    // The kernel rewrites the identifier of datagram sockets, never the sequence.
    guard UInt16(truncatingIfNeeded: payload.sequence) == echo.sequence else { return .unexpected(.corrupt) }
    guard ProbePayload.hasIntactPadding(echo.payload[...], skipping: forTracer ? 2 : 0) else { return .unexpected(.corrupt) }
    return .candidate(payload: payload, icmpSequence: echo.sequence, payloadLength: echo.payload.count)
  }
}
