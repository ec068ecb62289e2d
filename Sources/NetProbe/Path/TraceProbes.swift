/// A trace probe in flight.
struct TraceProbe: Sendable, Equatable {
  var slot: UInt32
  /// The round of the slot that sent it: a probe of an earlier round, or of a target that
  /// held the slot before, never counts for the round in progress.
  var round: UInt64
  var ttl: Int
  /// Which of the TTL's probes it is (its flow under `vary_flow`).
  var index: Int
  var sequence: UInt32
  var sendTime: Int64
  var address: IPAddress
  /// Its ICMP (or UDP) payload size: a probe refused for its size is sent again smaller.
  var payloadSize: Int
  /// A UDP probe's ports, which name its flow (0 on ICMP probes).
  var sourcePort: UInt16 = 0
  var destinationPort: UInt16 = 0
}

/// The path tracer's probes in flight, by ICMP sequence, and the rules that match an echo
/// reply or an ICMP error to one of them. Pure, so that every wrong match is unit-tested.
struct TraceProbeTable: Sendable {
  let nonce: UInt64
  private(set) var probes: [UInt16: TraceProbe] = [:]
  /// The sequences of each slot's probes, so a finished round's are dropped without a scan.
  private var bySlot: [UInt32: Set<UInt16>] = [:]

  init(nonce: UInt64) { self.nonce = nonce }

  var count: Int { probes.count }

  /// Adds a probe; one still there with the same 16-bit sequence (65,536 probes ago) is
  /// forgotten.
  mutating func insert(_ probe: TraceProbe) {
    let key = UInt16(truncatingIfNeeded: probe.sequence)
    if let old = probes[key] { bySlot[old.slot]?.remove(key) }
    probes[key] = probe
    bySlot[probe.slot, default: []].insert(key)
  }

  private mutating func take(_ key: UInt16) -> TraceProbe? {
    guard let probe = probes.removeValue(forKey: key) else { return nil }
    bySlot[probe.slot]?.remove(key)
    return probe
  }

  /// The probe an echo reply answers, taken out of the table. `payload` is what
  /// `ReplyMatcher` read from the reply (our nonce, the trace flag): slot, 32-bit sequence,
  /// send time and the replying address must all be the probe's.
  mutating func takeReply(icmpSequence: UInt16, payload: ProbePayload, from source: IPAddress) -> TraceProbe? {
    guard let probe = probes[icmpSequence], probe.sequence == payload.sequence, probe.slot == payload.slot,
      probe.sendTime == payload.sendTimeNanoseconds, probe.address == source
    else { return nil }
    return take(icmpSequence)
  }

  /// The probe an ICMP error is about, taken out of the table. `echo` is the request the
  /// error quotes; `destination` the quoted destination; `identifiers` the tracer's ICMP
  /// identifiers on raw sockets (which see every error on the host), nil on datagram
  /// sockets (the kernel rewrote the identifier and queues only errors about the socket's
  /// own requests). Whatever part of our payload the router quoted — RFC 792 routers quote
  /// none of it, RFC 1812 ones most — must be byte for byte what the probe carried.
  mutating func takeError(quoting echo: ICMPEcho, destination: IPAddress?, identifiers: (UInt16, UInt16)?) -> TraceProbe? {
    if let identifiers, echo.identifier != identifiers.0 && echo.identifier != identifiers.1 { return nil }
    guard let probe = probes[echo.sequence] else { return nil }
    if let destination, destination != probe.address { return nil }
    let quoted = echo.payload.prefix(ProbePayload.headerSize)
    if !quoted.isEmpty {
      var expected = [UInt8](repeating: 0, count: ProbePayload.headerSize)
      ProbePayload(nonce: nonce, slot: probe.slot, sequence: probe.sequence, sendTimeNanoseconds: probe.sendTime).write(into: &expected)
      guard quoted.elementsEqual(expected.prefix(quoted.count)) else { return nil }
    }
    return take(echo.sequence)
  }

  /// Forgets every probe of `slot` (a round finished, or its target was removed).
  mutating func removeAll(slot: UInt32) {
    for key in bySlot.removeValue(forKey: slot) ?? [] { probes[key] = nil }
  }
}

/// The ICMP payload size of a round's probes: the configured size, or less once the path
/// MTU (the kernel's, or a router's "fragmentation needed") is known to be smaller — with DF
/// a larger probe is refused, locally or by that router, and draws no hop. Pure.
struct ProbeSizing: Sendable, Equatable {
  let family: IPAddress.Family
  private(set) var payloadSize: Int

  init(family: IPAddress.Family, configuredPayloadSize: Int) {
    self.family = family
    payloadSize = max(configuredPayloadSize, ProbePayload.headerSize + 2)
  }

  /// Makes the probes fit `mtu` (IP and ICMP headers included); true if they shrank.
  mutating func fit(mtu: Int) -> Bool {
    let fitting = max(ProbePayload.headerSize + 2, mtu - (family == .ip4 ? 20 : 40) - 8)
    guard fitting < payloadSize else { return false }
    payloadSize = fitting
    return true
  }

  /// Whether a probe of `size` that was refused for its size goes again: it does when the
  /// probes are smaller now, once (its second copy is no larger than the probes).
  func resends(refused size: Int) -> Bool { payloadSize < size }
}

/// The tracer's overall send budget, a token bucket: at most `rate` probes per second
/// however many rounds overlap, with bursts of at most `burst`. Pure (times are passed in).
struct ProbeBudget: Sendable {
  let rate: Double
  let burst: Double
  private var tokens: Double
  private var updated: Int64

  init(rate: Int, burst: Int, now: Int64) {
    self.rate = Double(max(1, rate))
    self.burst = Double(max(1, burst))
    tokens = self.burst
    updated = now
  }

  private mutating func refill(now: Int64) {
    guard now > updated else { return }
    tokens = min(burst, tokens + Double(now - updated) * rate / 1e9)
    updated = now
  }

  /// Takes `count` tokens if there are that many; false (nothing taken) otherwise.
  mutating func take(_ count: Int, now: Int64) -> Bool {
    refill(now: now)
    guard tokens >= Double(count) else { return false }
    tokens -= Double(count)
    return true
  }

  /// When `count` tokens will be there (now if they are).
  mutating func availableAt(_ count: Int, now: Int64) -> Int64 {
    refill(now: now)
    let missing = min(Double(count), burst) - tokens
    return missing <= 0 ? now : now + Int64((missing * 1e9 / rate).rounded(.up))
  }
}

/// When each traced target's rounds run: spread over the whole trace interval by a
/// golden-ratio phase per slot (any number of targets fall evenly, and a new slot lands in
/// the largest gap), with the first round soon after the target is added.
enum TraceSchedule {
  /// The first round comes within this much of the target's start (or its interval, when
  /// shorter), so a fresh agent shows paths quickly.
  static let firstRoundWithinNanoseconds: Int64 = 5_000_000_000

  /// The slot's place in its interval, 0 ≤ phase < 1.
  static func phase(slot: UInt32) -> Double {
    (Double(slot & ~ProbePayload.traceSlotFlag) * 0.618_033_988_749_895).truncatingRemainder(dividingBy: 1)
  }

  /// The first two rounds of a target added at `now`; after them, one every interval. The
  /// second is on the slot's phase of the whole interval, at least half an interval after
  /// the first.
  static func firstRounds(slot: UInt32, interval: Int64, now: Int64) -> (first: Int64, second: Int64) {
    let phase = phase(slot: slot)
    let first = now + Int64(phase * Double(min(interval, firstRoundWithinNanoseconds)))
    var second = now + Int64(phase * Double(interval))
    while second < first + interval / 2 { second += interval }
    return (first, second)
  }
}
