import Testing
@testable import NetProbe

/// Matching replies and errors to the tracer's probes.
@Suite struct TraceProbeTableTests {
  let nonce: UInt64 = 0x0123_4567_89AB_CDEF
  let target = IPAddress("198.19.0.1")!
  let slot = 5 | ProbePayload.traceSlotFlag
  let traceIDs: (UInt16, UInt16) = (0xC242, 0xC242)

  func probe(sequence: UInt32 = 0x1_0007, ttl: Int = 3) -> TraceProbe {
    TraceProbe(
      slot: slot, round: 9, ttl: ttl, index: 0, sequence: sequence, sendTime: 1_700_000_000_000_000_123,
      address: target, payloadSize: 56)
  }

  func table(_ probes: TraceProbe...) -> TraceProbeTable {
    var table = TraceProbeTable(nonce: nonce)
    for probe in probes { table.insert(probe) }
    return table
  }

  /// The request `probe` sent, with `quote` bytes of its payload as a router quotes them.
  func quotedRequest(_ probe: TraceProbe, identifier: UInt16 = 0xC242, quote: Int = 56, nonce: UInt64? = nil) -> ICMPEcho {
    var payload = ProbePayload.padding(count: 56)
    ProbePayload(nonce: nonce ?? self.nonce, slot: probe.slot, sequence: probe.sequence, sendTimeNanoseconds: probe.sendTime)
      .write(into: &payload)
    return ICMPEcho(
      type: 8, identifier: identifier, sequence: UInt16(truncatingIfNeeded: probe.sequence), payload: Array(payload.prefix(quote)))
  }

  func payload(_ probe: TraceProbe) -> ProbePayload {
    ProbePayload(nonce: nonce, slot: probe.slot, sequence: probe.sequence, sendTimeNanoseconds: probe.sendTime)
  }

  @Test func aReplyMatchesItsProbeOnce() {
    let sent = probe()
    var probes = table(sent)
    #expect(probes.takeReply(icmpSequence: 7, payload: payload(sent), from: target) == sent)
    #expect(probes.takeReply(icmpSequence: 7, payload: payload(sent), from: target) == nil, "a duplicate")
  }

  @Test func aReplyMustBeTheProbesInEveryField() {
    let sent = probe()
    var probes = table(sent)
    var wrong = payload(sent)
    wrong.sequence &+= 0x1_0000
    #expect(probes.takeReply(icmpSequence: 7, payload: wrong, from: target) == nil, "same 16 bits, another 32-bit sequence")
    wrong = payload(sent)
    wrong.slot = 6 | ProbePayload.traceSlotFlag
    #expect(probes.takeReply(icmpSequence: 7, payload: wrong, from: target) == nil, "another slot")
    wrong = payload(sent)
    wrong.sendTimeNanoseconds += 1
    #expect(probes.takeReply(icmpSequence: 7, payload: wrong, from: target) == nil, "another send time")
    #expect(probes.takeReply(icmpSequence: 7, payload: payload(sent), from: IPAddress("198.19.0.2")!) == nil, "another host")
    #expect(probes.takeReply(icmpSequence: 8, payload: payload(sent), from: target) == nil)
    #expect(probes.count == 1)
  }

  @Test func anErrorMatchesByTheRequestItQuotes() {
    let sent = probe()
    for quote in [56, 24, 10, 0] {
      var probes = table(sent)
      #expect(
        probes.takeError(quoting: quotedRequest(sent, quote: quote), destination: target, identifiers: traceIDs) == sent,
        "\(quote) bytes of payload quoted")
    }
  }

  @Test func anErrorAboutAPingProbeIsNotTheTracers() {
    // RFC 792 quote: the ICMP header only, so the identifier is all that tells the ping
    // engine's probe (trace bit clear) from the tracer's with the same 16-bit sequence.
    let sent = probe()
    var probes = table(sent)
    #expect(probes.takeError(quoting: quotedRequest(sent, identifier: 0x4242, quote: 0), destination: target, identifiers: traceIDs) == nil)
    #expect(probes.count == 1)
  }

  @Test func anErrorWithAnotherPayloadDestinationOrSequenceIsRefused() {
    let sent = probe()
    var probes = table(sent)
    #expect(probes.takeError(quoting: quotedRequest(sent, nonce: 42), destination: target, identifiers: traceIDs) == nil, "another nonce")
    #expect(
      probes.takeError(quoting: quotedRequest(sent, quote: 4, nonce: 42), destination: target, identifiers: traceIDs) == nil,
      "the first bytes of another nonce")
    #expect(probes.takeError(quoting: quotedRequest(sent), destination: IPAddress("198.19.0.2")!, identifiers: traceIDs) == nil)
    #expect(probes.takeError(quoting: quotedRequest(probe(sequence: 0x1_0008)), destination: target, identifiers: traceIDs) == nil)
    var sameLowBits = quotedRequest(sent)
    ProbePayload(nonce: nonce, slot: slot, sequence: sent.sequence &+ 0x1_0000, sendTimeNanoseconds: sent.sendTime)
      .write(into: &sameLowBits.payload)
    #expect(probes.takeError(quoting: sameLowBits, destination: target, identifiers: traceIDs) == nil)
    #expect(probes.count == 1)
    // Datagram sockets: the kernel's identifier, and only this socket's errors.
    #expect(probes.takeError(quoting: quotedRequest(sent, identifier: 0x0101), destination: target, identifiers: nil) == sent)
  }

  @Test func aRemovedTargetsLateErrorsFindNothing() {
    let sent = probe()
    var probes = table(
      sent, probe(sequence: 8),
      TraceProbe(
        slot: 6 | ProbePayload.traceSlotFlag, round: 1, ttl: 1, index: 0, sequence: 9,
        sendTime: 1, address: target, payloadSize: 56))
    probes.removeAll(slot: slot)
    #expect(probes.takeError(quoting: quotedRequest(sent), destination: target, identifiers: traceIDs) == nil)
    #expect(probes.count == 1, "another slot's probe stays")
  }

  @Test func aProbeReplacedBySequenceWrapLeavesItsSlot() {
    let old = probe(sequence: 7)
    let newer = TraceProbe(
      slot: 6 | ProbePayload.traceSlotFlag, round: 1, ttl: 1, index: 0, sequence: 0x1_0007, sendTime: 2,
      address: target, payloadSize: 56)
    var probes = table(old, newer)
    probes.removeAll(slot: slot)
    #expect(probes.probes[7] == newer, "removing the old probe's slot keeps the probe that took its sequence")
    probes.removeAll(slot: newer.slot)
    #expect(probes.count == 0)
  }
}

@Suite struct TraceScheduleTests {
  @Test func roundsSpreadOverTheWholeInterval() {
    let interval: Int64 = 60_000_000_000
    var perSixth = [Int](repeating: 0, count: 6)
    for slot in UInt32(0)..<120 {
      let times = TraceSchedule.firstRounds(slot: slot | ProbePayload.traceSlotFlag, interval: interval, now: 0)
      #expect(times.first >= 0 && times.first < TraceSchedule.firstRoundWithinNanoseconds, "a fresh target is traced soon")
      #expect(times.second - times.first >= interval / 2 && times.second - times.first < interval * 3 / 2)
      perSixth[Int((times.second % interval) / (interval / 6))] += 1
    }
    // 120 targets, 20 per sixth of the interval if even; golden-ratio phases come close.
    #expect(perSixth.allSatisfy { (17...23).contains($0) }, "\(perSixth)")
  }

  @Test func aShortIntervalStartsWithinIt() {
    let times = TraceSchedule.firstRounds(slot: 7, interval: 1_000_000_000, now: 100)
    #expect(times.first < 100 + 1_000_000_000 && times.second >= times.first + 500_000_000)
  }
}

@Suite struct ProbeSizingTests {
  @Test func probesShrinkToThePathMTUAndRefusedOnesGoAgainOnce() {
    var sizing = ProbeSizing(family: .ip4, configuredPayloadSize: 1400)
    let shrank = sizing.fit(mtu: 1280)
    #expect(shrank && sizing.payloadSize == 1252, "1280 - 20 (IPv4) - 8 (ICMP)")
    let larger = sizing.fit(mtu: 1500)
    #expect(!larger && sizing.payloadSize == 1252, "a larger MTU does not grow them")
    #expect(sizing.resends(refused: 1400), "a probe of the old size, refused: send it again")
    #expect(!sizing.resends(refused: 1252), "refused at the size probes have now: no loop")
    var v6 = ProbeSizing(family: .ip6, configuredPayloadSize: 1400)
    _ = v6.fit(mtu: 1280)
    #expect(v6.payloadSize == 1232)
    var tiny = ProbeSizing(family: .ip4, configuredPayloadSize: 0)
    #expect(tiny.payloadSize == ProbePayload.headerSize + 2, "always room for our header and the flow word")
    _ = tiny.fit(mtu: 20)
    #expect(tiny.payloadSize == ProbePayload.headerSize + 2)
  }
}

@Suite struct ProbeBudgetTests {
  @Test func boundsTheRateAndTheBurst() {
    var budget = ProbeBudget(rate: 1_000, burst: 10, now: 0)
    let burst = budget.take(10, now: 0)
    let emptied = budget.take(1, now: 0)
    let available = budget.availableAt(3, now: 0)
    let early = budget.take(3, now: 2_000_000)
    let onTime = budget.take(3, now: 3_000_000)
    let refilled = budget.take(10, now: 1_000_000_000)
    let beyond = budget.take(1, now: 1_000_000_000)
    #expect(burst && !emptied)
    #expect(available == 3_000_000, "3 probes at 1,000/s")
    #expect(!early && onTime)
    #expect(refilled && !beyond, "refills to the burst, not beyond")
    var sent = 0
    var now: Int64 = 2_000_000_000
    while now < 3_000_000_000 {
      if budget.take(3, now: now) { sent += 3 }
      now += 100_000
    }
    #expect(sent >= 990 && sent <= 1_011, "\(sent) probes in one second")
  }
}
