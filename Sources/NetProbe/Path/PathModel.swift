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

  /// The lowest TTL whose probe drew a Destination Unreachable: no probe got farther.
  public var unreachableTTL: Int? { unreachable.lazy.map(\.ttl).min() }

  /// Where the path ends: the destination's TTL, or the lower TTL at which a router said
  /// the destination is unreachable. Nil while neither happened.
  public var endTTL: Int? {
    switch (destinationTTL, unreachableTTL) {
    case (let a?, let b?): min(a, b)
    case (let a?, nil): a
    case (nil, let b?): b
    case (nil, nil): nil
    }
  }

  /// The hops up to the end (or to the last that answered when the path has none).
  public var relevantHops: ArraySlice<Hop> {
    if let endTTL { return hops.prefix(endTTL) }
    let last = hops.lastIndex { !$0.responders.isEmpty } ?? -1
    return hops.prefix(last + 1)
  }

  /// The ordered hop list of this round: its identity.
  public var identity: PathIdentity {
    PathIdentity(hops: relevantHops.map { Set($0.addresses) }, complete: endTTL != nil)
  }

  /// The unreachable codes of this round, each once: the counter counts rounds, not
  /// error messages (every probe past the router that refuses draws one).
  public var unreachableCodes: Set<UInt8> { Set(unreachable.map(\.code)) }

  /// The round as it is published: probes above the end may have been sent before the
  /// answer came back, and what they drew is not part of the path.
  public func trimmed() -> TraceRound {
    guard let end = endTTL else { return self }
    var round = self
    for index in end..<round.hops.count { round.hops[index] = Hop() }
    round.unreachable.removeAll { $0.ttl > end }
    if let destination = round.destinationTTL, destination > end { round.destinationTTL = nil }
    return round
  }

  /// Records the destination's echo reply to the probe sent with `ttl`. False (and nothing
  /// recorded) for a TTL this round did not probe.
  @discardableResult
  public mutating func recordReply(ttl: Int, from source: IPAddress, rtt: Double) -> Bool {
    guard hops.indices.contains(ttl - 1) else { return false }
    hops[ttl - 1].record(source, rtt: rtt)
    destinationTTL = min(destinationTTL ?? Int.max, ttl)
    return true
  }

  /// Records an ICMP error about the probe sent with `ttl`. A Time Exceeded or Unreachable
  /// names the router at that TTL. A "fragmentation needed" does not: the router that
  /// refused the probe may be nearer than its TTL, so only its MTU is kept, and the probe
  /// no longer counts as sent (the tracer sends that TTL again, smaller). False for a TTL
  /// this round did not probe.
  @discardableResult
  public mutating func recordError(_ kind: ICMPError.Kind, ttl: Int, from source: IPAddress, rtt: Double) -> Bool {
    guard hops.indices.contains(ttl - 1) else { return false }
    switch kind {
    case .timeExceeded:
      hops[ttl - 1].record(source, rtt: rtt)
    case .unreachable(let code):
      hops[ttl - 1].record(source, rtt: rtt)
      unreachable.append((code, ttl))
    case .mtuExceeded(let reported):
      if let reported { mtu = min(mtu ?? Int.max, reported) }
      hops[ttl - 1].probesSent = max(0, hops[ttl - 1].probesSent - 1)
    }
    return true
  }

  public static func == (a: TraceRound, b: TraceRound) -> Bool {
    a.hops == b.hops && a.destinationTTL == b.destinationTTL && a.mtu == b.mtu
      && a.unreachable.elementsEqual(b.unreachable) { $0.code == $1.code && $0.ttl == $1.ttl }
  }
}

/// A path: for each TTL the set of routers seen there (empty: silent, `*`), and whether its
/// end is known.
public struct PathIdentity: Sendable, Equatable {
  public var hops: [Set<IPAddress>]
  /// True when the path ends at its last hop: the destination answered there, or a router
  /// there said the destination is unreachable. An incomplete path may go on past its last
  /// responder.
  public var complete: Bool

  public init(hops: [Set<IPAddress>], complete: Bool) {
    self.hops = hops
    self.complete = complete
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
  /// common, both are complete at different lengths, or one is complete and the other saw a
  /// router past its end. Silent hops never conflict, so a router that rate-limits its ICMP
  /// errors does not make a path change.
  public func conflicts(with other: PathIdentity) -> Bool {
    if complete && other.complete && hops.count != other.hops.count { return true }
    if complete && other.hops.dropFirst(hops.count).contains(where: { !$0.isEmpty }) { return true }
    if other.complete && hops.dropFirst(other.hops.count).contains(where: { !$0.isEmpty }) { return true }
    for (mine, theirs) in zip(hops, other.hops) where !mine.isEmpty && !theirs.isEmpty {
      if mine.isDisjoint(with: theirs) { return true }
    }
    return false
  }

  /// This path with `other`'s observations added: silent hops filled, ECMP responders
  /// joined, the length of whichever is complete. Only for paths that do not conflict.
  public func merged(with other: PathIdentity) -> PathIdentity {
    let length = complete ? hops.count : other.complete ? other.hops.count : max(hops.count, other.hops.count)
    let merged = (0..<length).map { index in
      (index < hops.count ? hops[index] : []).union(index < other.hops.count ? other.hops[index] : [])
    }
    return PathIdentity(hops: merged, complete: complete || other.complete)
  }
}

/// Decides when the path has changed: only when K consecutive rounds agree on a path that
/// conflicts with the confirmed one. Keeps the confirmed path to what the rounds still see:
/// a responder unseen for `responderLifetime` rounds while another answers at its hop has
/// gone (an ECMP branch withdrawn) and is dropped; a hop where nobody answers keeps its
/// responders (silence is no evidence). Pure, so its hysteresis is tested round by round.
public struct PathChangeDetector: Sendable, Equatable {
  public private(set) var confirmed: PathIdentity?
  public private(set) var candidate: PathIdentity?
  public private(set) var candidateRounds = 0
  public private(set) var changes = 0
  /// Settable so a reload that changes only `confirm_rounds` keeps the path watched.
  public internal(set) var confirmRounds: Int
  public let responderLifetime: Int
  /// For each hop of the confirmed path: the round in which each responder was last seen.
  private var lastSeen: [[IPAddress: Int]] = []
  /// Rounds observed that had any answer.
  private var round = 0

  public static let defaultResponderLifetime = 10

  public init(confirmRounds: Int, responderLifetime: Int = PathChangeDetector.defaultResponderLifetime) {
    self.confirmRounds = max(1, confirmRounds)
    self.responderLifetime = max(1, responderLifetime)
  }

  /// Feeds one round's path; true when it confirmed a change.
  public mutating func observe(_ path: PathIdentity) -> Bool {
    // A round in which nothing answered says nothing about the path.
    guard path.hops.contains(where: { !$0.isEmpty }) else { return false }
    round += 1
    guard let current = confirmed else {
      adopt(path)
      return false
    }
    if !path.conflicts(with: current) {
      confirmed = current.merged(with: path)
      note(path)
      ageOut()
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
    adopt(newPath)
    candidate = nil
    candidateRounds = 0
    changes += 1
    return true
  }

  private mutating func adopt(_ path: PathIdentity) {
    confirmed = path
    lastSeen = []
    note(path)
  }

  private mutating func note(_ path: PathIdentity) {
    let length = confirmed?.hops.count ?? 0
    if lastSeen.count > length { lastSeen.removeLast(lastSeen.count - length) }
    while lastSeen.count < length { lastSeen.append([:]) }
    for (index, hop) in path.hops.enumerated() where index < length {
      for responder in hop { lastSeen[index][responder] = round }
    }
  }

  private mutating func ageOut() {
    guard var path = confirmed else { return }
    for index in lastSeen.indices where lastSeen[index].values.contains(where: { round - $0 < responderLifetime }) {
      for (responder, seen) in lastSeen[index] where round - seen >= responderLifetime {
        lastSeen[index][responder] = nil
        path.hops[index].remove(responder)
      }
    }
    confirmed = path
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
