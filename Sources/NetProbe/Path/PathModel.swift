/// What one trace round saw: for each TTL, who answered and how fast; whether the
/// destination answered, and at which TTL; unreachable codes and the path MTU.
public struct TraceRound: Sendable, Equatable {
  public struct Hop: Sendable, Equatable {
    /// Responders in order of first reply, each with the RTTs of its replies (seconds).
    public var responders: [(address: IPAddress, rtts: [Double])] = []
    public var probesSent = 0

    public init() {}

    public var replies: Int { responders.reduce(0) { $0 + $1.rtts.count } }
    public var addresses: [IPAddress] { responders.map(\.address) }

    public mutating func record(_ address: IPAddress, rtt: Double) {
      if let index = responders.firstIndex(where: { $0.address == address }) {
        responders[index].rtts.append(rtt)
      } else {
        responders.append((address, [rtt]))
      }
    }

    public static func == (a: Hop, b: Hop) -> Bool {
      a.probesSent == b.probesSent && a.responders.elementsEqual(b.responders) { $0.address == $1.address && $0.rtts == $1.rtts }
    }
  }

  /// hops[0] is TTL 1.
  public var hops: [Hop]
  /// The lowest TTL at which the destination itself answered.
  public var destinationTTL: Int?
  /// Destination unreachable codes received, with the TTL they came at.
  public var unreachable: [(code: UInt8, ttl: Int)] = []
  /// The smallest next-hop MTU reported ("fragmentation needed", "packet too big").
  public var mtu: Int?

  public init(maxHops: Int) {
    hops = [Hop](repeating: Hop(), count: maxHops)
  }

  /// The hops up to the destination (or to the last that answered when it never did).
  public var relevantHops: ArraySlice<Hop> {
    if let destinationTTL { return hops.prefix(destinationTTL) }
    let last = hops.lastIndex { !$0.responders.isEmpty } ?? -1
    return hops.prefix(last + 1)
  }

  /// The ordered hop list of this round: its identity.
  public var identity: PathIdentity {
    PathIdentity(hops: relevantHops.map { Set($0.addresses) }, reachedDestination: destinationTTL != nil)
  }

  public static func == (a: TraceRound, b: TraceRound) -> Bool {
    a.hops == b.hops && a.destinationTTL == b.destinationTTL && a.mtu == b.mtu
      && a.unreachable.elementsEqual(b.unreachable) { $0.code == $1.code && $0.ttl == $1.ttl }
  }
}

/// A path: for each TTL the set of routers seen there (empty: silent, `*`), and whether it
/// ends at the destination.
public struct PathIdentity: Sendable, Equatable {
  public var hops: [Set<IPAddress>]
  public var reachedDestination: Bool

  public init(hops: [Set<IPAddress>], reachedDestination: Bool) {
    self.hops = hops
    self.reachedDestination = reachedDestination
  }

  /// `198.18.1.1|*|198.18.3.2`, responders of one hop sorted and joined by `,`.
  public var text: String {
    hops.map { hop in hop.isEmpty ? "*" : hop.map(\.description).sorted().joined(separator: ",") }.joined(separator: "|")
  }

  /// FNV-1a of `text`, folded to 32 bits so a float64 gauge holds it exactly.
  public var hash: UInt32 {
    var value: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
      value ^= UInt64(byte)
      value = value &* 0x100_0000_01B3
    }
    return UInt32(truncatingIfNeeded: value ^ (value >> 32))
  }

  /// True when the two cannot be the same path: at some TTL both saw routers and none in
  /// common, or both reached the destination at different TTLs. Silent hops never
  /// conflict, so a router that rate-limits its ICMP errors does not make a path change.
  public func conflicts(with other: PathIdentity) -> Bool {
    if reachedDestination && other.reachedDestination && hops.count != other.hops.count { return true }
    for (mine, theirs) in zip(hops, other.hops) where !mine.isEmpty && !theirs.isEmpty {
      if mine.isDisjoint(with: theirs) { return true }
    }
    return false
  }

  /// This path with `other`'s observations added: silent hops filled, ECMP responders
  /// joined. Only for paths that do not conflict.
  public func merged(with other: PathIdentity) -> PathIdentity {
    var hops = self.hops
    if other.hops.count > hops.count && !reachedDestination {
      hops += [Set<IPAddress>](repeating: [], count: other.hops.count - hops.count)
    }
    for index in hops.indices where index < other.hops.count {
      hops[index].formUnion(other.hops[index])
    }
    return PathIdentity(hops: hops, reachedDestination: reachedDestination || other.reachedDestination)
  }
}

/// Decides when the path has changed: only when K consecutive rounds agree on a path that
/// conflicts with the confirmed one. Pure, so its hysteresis is tested round by round.
public struct PathChangeDetector: Sendable, Equatable {
  public private(set) var confirmed: PathIdentity?
  public private(set) var candidate: PathIdentity?
  public private(set) var candidateRounds = 0
  public private(set) var changes = 0
  public let confirmRounds: Int

  public init(confirmRounds: Int) {
    self.confirmRounds = max(1, confirmRounds)
  }

  /// Feeds one round's path; true when it confirmed a change.
  public mutating func observe(_ path: PathIdentity) -> Bool {
    // A round in which nothing answered says nothing about the path.
    guard path.hops.contains(where: { !$0.isEmpty }) else { return false }
    guard let current = confirmed else {
      confirmed = path
      return false
    }
    if !path.conflicts(with: current) {
      confirmed = current.merged(with: path)
      candidate = nil
      candidateRounds = 0
      return false
    }
    if let pending = candidate, !path.conflicts(with: pending) {
      candidate = pending.merged(with: path)
      candidateRounds += 1
    } else {
      candidate = path
      candidateRounds = 1
    }
    guard candidateRounds >= confirmRounds, let newPath = candidate else { return false }
    confirmed = newPath
    candidate = nil
    candidateRounds = 0
    changes += 1
    return true
  }
}

/// Per-hop RTT and loss over the last rounds, for the per-hop gauges.
public struct HopHistory: Sendable, Equatable {
  private var rounds: [(sent: Int, rtts: [Double])] = []
  public let capacity: Int

  public init(capacity: Int = 10) { self.capacity = capacity }

  public mutating func record(sent: Int, rtts: [Double]) {
    rounds.append((sent, rtts))
    if rounds.count > capacity { rounds.removeFirst(rounds.count - capacity) }
  }

  public var lossRatio: Double? {
    let sent = rounds.reduce(0) { $0 + $1.sent }
    guard sent > 0 else { return nil }
    let received = rounds.reduce(0) { $0 + $1.rtts.count }
    return max(0, Double(sent - received) / Double(sent))
  }

  public var meanRTT: Double? {
    let all = rounds.flatMap(\.rtts)
    return all.isEmpty ? nil : all.reduce(0, +) / Double(all.count)
  }

  public static func == (a: HopHistory, b: HopHistory) -> Bool {
    a.capacity == b.capacity && a.rounds.elementsEqual(b.rounds) { $0.sent == $1.sent && $0.rtts == $1.rtts }
  }
}

/// The Paris-traceroute trick for ICMP: choose two payload bytes so that the ICMP checksum
/// — which load balancers hash along with the addresses — stays the same for every probe
/// of a flow, whatever their sequence numbers and send times.
public enum FlowChecksum {
  /// Writes, at `offset` in `packet` (an echo request with its checksum field zero), the
  /// 16-bit word that makes the ones' complement sum of the message equal to `flow`; the
  /// checksum then comes out as `~flow` on every probe. `offset` must be even.
  public static func compensate(_ packet: inout [UInt8], at offset: Int, flow: UInt16) {
    precondition(offset % 2 == 0 && offset + 1 < packet.count, "the compensation word must be aligned and inside")
    packet[offset] = 0
    packet[offset + 1] = 0
    let sum = ~InternetChecksum.compute(packet)  // the ones' complement sum so far
    // Find c with sum +' c = flow (ones' complement addition): c = flow +' ~sum.
    var value = UInt32(flow) + UInt32(~sum)
    value = (value & 0xFFFF) + (value >> 16)
    let word = UInt16(truncatingIfNeeded: value)
    packet[offset] = UInt8(word >> 8)
    packet[offset + 1] = UInt8(word & 0xFF)
  }
}
