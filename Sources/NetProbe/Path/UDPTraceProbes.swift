/// The ports of UDP trace probes. As in traceroute, the destination port is high and
/// unlikely to be open, so the destination answers Port Unreachable; as in Paris and Dublin
/// traceroute, the ports name the flow: a target's probes keep one 5-tuple (the socket's
/// source port, the target's destination port) so a 5-tuple hasher sends them one way, and
/// under `vary_flow` each probe of a round gets its own destination port, and the next round
/// the next ports: a hash that sends a round's few probes at a hop all one way sends the
/// next round's elsewhere, so every branch shows within a few rounds (and stays, as the
/// confirmed path joins the responders of rounds that do not conflict).
enum UDPTraceFlow {
  /// traceroute's first port.
  static let basePort: UInt16 = 33_434
  /// Destination ports in use: basePort ..< basePort + span. 64 hops × 10 probes fit, so
  /// the probes of one round never share a port under `vary_flow`.
  static let span = 1024

  /// The destination port of the probe `index` (0-based) at `ttl` of round `round` of a
  /// target whose flow number is `flow` (random per target), with `probesPerHop` per TTL.
  static func destinationPort(flow: UInt16, varyFlow: Bool, round: UInt64, ttl: Int, index: Int, probesPerHop: Int) -> UInt16 {
    guard varyFlow else { return basePort + UInt16(Int(flow) % span) }
    // The round moves its block of ports by a Fibonacci hash of its number: rounds of many
    // targets interleave, so a plain stride could come back to the same ports.
    let roundShift = Int((round &* 0x9E37_79B9_7F4A_7C15) >> 54)
    let offset = roundShift + (ttl - 1) * probesPerHop + index
    return basePort + UInt16((Int(flow) + offset) % span)
  }

  /// The UDP payload of a probe: the probe payload's header (nonce, slot, sequence, send
  /// time) and the pattern, `size` bytes in all.
  static func payload(_ payload: ProbePayload, size: Int) -> [UInt8] {
    var bytes = ProbePayload.padding(count: max(size, ProbePayload.headerSize))
    payload.write(into: &bytes)
    return bytes
  }
}

/// What a UDP trace probe's error-queue entry says, before it is matched to the probe.
enum UDPTraceAnswer: Sendable, Equatable {
  /// Time Exceeded, an Unreachable other than the port's, or a "fragmentation needed" /
  /// "packet too big": as the ICMP tracer reads them.
  case error(ICMPError.Kind)
  /// Port Unreachable: the destination itself, when it comes from the probe's address (a
  /// firewall on the way that rejects UDP says so from its own address: then a hop that
  /// says unreachable, code 3 / ICMPv6 code 4).
  case portUnreachable

  /// The answer a `sock_extended_err` of `family` carries; nil for what is no network answer
  /// (a local error: origin not ICMP / ICMPv6) or no hop (a reassembly timeout).
  static func classify(_ error: ExtendedError, family: IPAddress.Family) -> UDPTraceAnswer? {
    switch (family, error.origin, error.type) {
    case (.ip4, 2, ICMPType.timeExceededV4), (.ip6, 3, ICMPType.timeExceededV6):
      return error.code == 0 ? .error(.timeExceeded) : nil
    case (.ip4, 2, ICMPType.destinationUnreachableV4):
      switch error.code {
      case 3: return .portUnreachable
      case 4: return .error(.mtuExceeded(mtu: ICMPError.knownMTU(Int(error.info))))
      default: return .error(.unreachable(code: error.code))
      }
    case (.ip6, 3, ICMPType.destinationUnreachableV6):
      return error.code == 4 ? .portUnreachable : .error(.unreachable(code: error.code))
    case (.ip6, 3, ICMPType.packetTooBigV6):
      return .error(.mtuExceeded(mtu: ICMPError.knownMTU(Int(error.info))))
    default:
      return nil
    }
  }

  /// The unreachable code of a Port Unreachable of `family`, for one that is not the
  /// destination's.
  static func portUnreachableCode(_ family: IPAddress.Family) -> UInt8 { family == .ip4 ? 3 : 4 }
}

/// Why an answer on a UDP trace socket's error queue was not taken for a probe: the reasons
/// of `netprobe_path_packets_unexpected_total`.
enum TraceAnswerProblem: String, Sendable, CaseIterable {
  /// No destination in the entry, or an ICMP type that answers no probe.
  case malformed
  /// The quote carries a nonce that is not this process's: an earlier run, or a forgery.
  case badNonce = "bad_nonce"
  /// No probe of ours is in flight on that flow (ports and destination), or the quote names
  /// a sequence we have no record of: late (its round ended), or forged.
  case unknownProbe = "unknown_probe"
  /// The quote is too short to tell apart the probes in flight on that flow.
  case ambiguous
  /// Our nonce and a probe of that flow, but the slot, send time or padding differ.
  case corrupt
}

/// The UDP probes in flight, by sequence and by flow, and the rule that matches an error
/// queue entry to one of them. Pure, so that every wrong match is unit-tested.
///
/// An entry reached our socket because the kernel matched the quoted UDP header to it (the
/// source port); the entry names the quoted destination address and port. The probe is the
/// one in flight on that flow whose payload — nonce, slot, sequence, send time, pattern —
/// is byte for byte what the router quoted of it. RFC 792 routers quote no payload: then a
/// flow with one probe in flight (each probe under `vary_flow`) still names it, a flow with
/// several is `ambiguous`.
struct UDPTraceProbeTable: Sendable {
  struct Flow: Hashable {
    var sourcePort: UInt16
    var destination: IPAddress
    var destinationPort: UInt16
  }

  let nonce: UInt64
  private(set) var probes: [UInt32: TraceProbe] = [:]
  private var byFlow: [Flow: [UInt32]] = [:]
  private var bySlot: [UInt32: Set<UInt32>] = [:]

  init(nonce: UInt64) { self.nonce = nonce }

  var count: Int { probes.count }

  static func flow(of probe: TraceProbe) -> Flow {
    Flow(sourcePort: probe.sourcePort, destination: probe.address, destinationPort: probe.destinationPort)
  }

  /// Adds a probe; one still there with the same sequence (2^32 probes ago) is forgotten.
  mutating func insert(_ probe: TraceProbe) {
    if probes[probe.sequence] != nil { _ = take(probe.sequence) }
    probes[probe.sequence] = probe
    byFlow[Self.flow(of: probe), default: []].append(probe.sequence)
    bySlot[probe.slot, default: []].insert(probe.sequence)
  }

  private mutating func take(_ sequence: UInt32) -> TraceProbe? {
    guard let probe = probes.removeValue(forKey: sequence) else { return nil }
    let flow = Self.flow(of: probe)
    byFlow[flow]?.removeAll { $0 == sequence }
    if byFlow[flow]?.isEmpty == true { byFlow[flow] = nil }
    bySlot[probe.slot]?.remove(sequence)
    return probe
  }

  /// The bytes a probe carried: what a router's quote must repeat.
  private func payload(of probe: TraceProbe) -> [UInt8] {
    UDPTraceFlow.payload(
      ProbePayload(nonce: nonce, slot: probe.slot, sequence: probe.sequence, sendTimeNanoseconds: probe.sendTime),
      size: probe.payloadSize)
  }

  /// The probe an error-queue entry is about, taken out of the table, or why there is none.
  ///
  /// - Parameters:
  ///   - quoted: the quoted UDP payload (possibly empty, possibly cut short).
  ///   - destination: the quoted destination address and port.
  ///   - sourcePort: the source port of the socket the entry was queued on.
  mutating func takeAnswer(quoting quoted: ArraySlice<UInt8>, destination: SocketAddress?, sourcePort: UInt16)
    -> Result<TraceProbe, TraceAnswerProblemError>
  {
    guard let destination else { return .failure(.init(.malformed)) }
    let flow = Flow(sourcePort: sourcePort, destination: destination.ip, destinationPort: destination.port)
    if let header = ProbePayload.decode(quoted) {
      guard header.nonce == nonce else { return .failure(.init(.badNonce)) }
      guard let probe = probes[header.sequence], Self.flow(of: probe) == flow else { return .failure(.init(.unknownProbe)) }
      guard quoted.elementsEqual(payload(of: probe).prefix(quoted.count)) else { return .failure(.init(.corrupt)) }
      return take(header.sequence).map { .success($0) } ?? .failure(.init(.unknownProbe))
    }
    let inFlight = byFlow[flow] ?? []
    guard !inFlight.isEmpty else { return .failure(.init(.unknownProbe)) }
    let matching = inFlight.filter { sequence in
      probes[sequence].map { quoted.elementsEqual(payload(of: $0).prefix(quoted.count)) } ?? false
    }
    switch matching.count {
    case 0: return .failure(.init(quoted.isEmpty ? .unknownProbe : .corrupt))
    case 1: return take(matching[0]).map { .success($0) } ?? .failure(.init(.unknownProbe))
    default: return .failure(.init(.ambiguous))
    }
  }

  /// Forgets every probe of `slot` (a round finished, or its target was removed).
  mutating func removeAll(slot: UInt32) {
    for sequence in bySlot.removeValue(forKey: slot) ?? [] { _ = take(sequence) }
  }
}

/// `TraceAnswerProblem` as the failure of a `Result`.
struct TraceAnswerProblemError: Error, Equatable {
  let problem: TraceAnswerProblem
  init(_ problem: TraceAnswerProblem) { self.problem = problem }
}
