import Testing
@testable import NetProbe

/// A round's path ends where the probes stopped: at the destination, or at a router's
/// Destination Unreachable; what came from above the end is not part of it.
@Suite struct TraceRoundTests {
  let r1 = IPAddress("198.18.1.1")!
  let r3 = IPAddress("198.18.3.1")!
  let destination = IPAddress("198.19.0.1")!

  /// A round as the lab's host-unreachable router makes it: Time Exceeded at TTL 1, then
  /// Host Unreachable from the same router for every higher TTL probed before the first
  /// unreachable came back.
  func unreachableRound(maxHops: Int = 8) -> TraceRound {
    var round = TraceRound(maxHops: maxHops)
    for ttl in 1...maxHops { round.hops[ttl - 1].probesSent = 3 }
    for _ in 0..<3 { round.recordError(.timeExceeded, ttl: 1, from: r1, rtt: 0.001) }
    for ttl in 2...maxHops { round.recordError(.unreachable(code: 1), ttl: ttl, from: r1, rtt: 0.001) }
    return round
  }

  @Test func theLowestUnreachableEndsThePath() {
    let round = unreachableRound()
    #expect(round.endTTL == 2 && round.destinationTTL == nil)
    #expect(round.identity == PathIdentity(hops: [[r1], [r1]], complete: true))
    #expect(round.unreachableCodes == [1], "one code, though seven errors came")
    let published = round.trimmed()
    #expect(published.unreachable.map(\.ttl) == [2])
    #expect(published.hops[2...].allSatisfy { $0.probesSent == 0 && $0.responders.isEmpty })
  }

  @Test func trimmingDropsWhatCameFromAboveTheDestination() {
    var round = TraceRound(maxHops: 6)
    for ttl in 1...5 { round.hops[ttl - 1].probesSent = 3 }
    round.recordError(.timeExceeded, ttl: 1, from: r1, rtt: 0.001)
    // TTL 3, 4 and 5 went out before the reply to TTL 2 came back: the destination answers
    // all of them.
    for ttl in [3, 2, 4, 5] { round.recordReply(ttl: ttl, from: destination, rtt: 0.002) }
    round.unreachable.append((code: 13, ttl: 5))
    #expect(round.destinationTTL == 2 && round.endTTL == 2)
    let published = round.trimmed()
    #expect(published.hops[0].addresses == [r1] && published.hops[1].addresses == [destination])
    #expect(published.hops[2...].allSatisfy { $0.responders.isEmpty && $0.probesSent == 0 })
    #expect(published.unreachable.isEmpty)
    #expect(published.identity == PathIdentity(hops: [[r1], [destination]], complete: true))
    #expect(TraceRound(maxHops: 3).trimmed() == TraceRound(maxHops: 3), "nothing to trim without an end")
  }

  @Test func aDestinationAboveAnUnreachableIsNotReached() {
    var round = unreachableRound(maxHops: 4)
    round.recordReply(ttl: 4, from: destination, rtt: 0.002)
    #expect(round.endTTL == 2)
    #expect(round.trimmed().destinationTTL == nil)
  }

  @Test func answersForTTLsTheRoundDidNotProbeAreRefused() {
    // A late error from a round with a larger max_hops (the slot's previous target).
    var round = TraceRound(maxHops: 3)
    let tooHigh = round.recordError(.timeExceeded, ttl: 8, from: r1, rtt: 0.001)
    let zero = round.recordError(.unreachable(code: 1), ttl: 0, from: r1, rtt: 0.001)
    let reply = round.recordReply(ttl: 4, from: destination, rtt: 0.001)
    #expect(!tooHigh && !zero && !reply)
    #expect(round == TraceRound(maxHops: 3))
  }

  @Test func fragmentationNeededIsNoHopAndNoLoss() {
    var round = TraceRound(maxHops: 4)
    round.hops[2].probesSent = 3
    round.recordError(.mtuExceeded(mtu: 1400), ttl: 3, from: r1, rtt: 0.001)
    round.recordError(.mtuExceeded(mtu: 1280), ttl: 3, from: r1, rtt: 0.001)
    round.recordError(.mtuExceeded(mtu: nil), ttl: 3, from: r1, rtt: 0.001)
    #expect(round.mtu == 1280)
    #expect(round.hops[2].responders.isEmpty, "r1 refused a TTL-3 probe: it is not hop 3")
    #expect(round.hops[2].probesSent == 0, "refused probes are sent again, not lost")
    #expect(round.endTTL == nil)
  }
}

@Suite struct PathIdentityEndTests {
  let r1 = IPAddress("198.18.1.1")!
  let r2 = IPAddress("198.18.2.1")!
  let destination = IPAddress("198.19.0.1")!

  @Test func aCompletePathConflictsWithRoutersPastItsEnd() {
    let complete = PathIdentity(hops: [[r1], [destination]], complete: true)
    #expect(complete.conflicts(with: PathIdentity(hops: [[], [], [r2]], complete: false)))
    #expect(PathIdentity(hops: [[], [], [r2]], complete: false).conflicts(with: complete))
    #expect(!complete.conflicts(with: PathIdentity(hops: [[r1], [], []], complete: false)))
  }

  @Test func mergingKeepsTheCompleteLength() {
    let open = PathIdentity(hops: [[r1]], complete: false)
    let complete = PathIdentity(hops: [[], [], [destination]], complete: true)
    #expect(open.merged(with: complete) == PathIdentity(hops: [[r1], [], [destination]], complete: true))
    #expect(complete.merged(with: open) == PathIdentity(hops: [[r1], [], [destination]], complete: true))
    let longerOpen = PathIdentity(hops: [[r1], [], [], []], complete: false)
    #expect(longerOpen.merged(with: complete).hops.count == 3, "silent hops past the end are dropped")
  }
}

/// A responder that has gone while another answers at its TTL leaves the confirmed path;
/// a hop where nobody answers keeps its routers.
@Suite struct ResponderAgeingTests {
  let r1 = IPAddress("198.18.1.1")!
  let r2 = IPAddress("198.18.2.1")!
  let r3 = IPAddress("198.18.3.1")!
  let destination = IPAddress("198.19.0.1")!

  @Test func aWithdrawnECMPBranchAgesOut() throws {
    var detector = PathChangeDetector(confirmRounds: 2, responderLifetime: 4)
    _ = detector.observe(PathIdentity(hops: [[r1], [r2, r3], [destination]], complete: true))
    let viaR2 = PathIdentity(hops: [[r1], [r2], [destination]], complete: true)
    let hashes = try (1...6).map { _ in
      let changed = detector.observe(viaR2)
      #expect(!changed)
      return try #require(detector.confirmed).hash
    }
    #expect(detector.confirmed == viaR2, "r3 unseen for 4 rounds while r2 answered")
    #expect(detector.changes == 0, "losing a branch is not a path change")
    #expect(hashes[0] != hashes[5] && hashes[0] == PathIdentity(hops: [[r1], [r2, r3], [destination]], complete: true).hash)
    #expect(hashes[5] == viaR2.hash, "the hash follows the hop list the hop_info series show")
  }

  @Test func aSilentHopKeepsItsRouters() {
    var detector = PathChangeDetector(confirmRounds: 2, responderLifetime: 3)
    let full = PathIdentity(hops: [[r1], [r2, r3], [destination]], complete: true)
    _ = detector.observe(full)
    for _ in 0..<20 {
      _ = detector.observe(PathIdentity(hops: [[r1], [], [destination]], complete: true))
    }
    #expect(detector.confirmed == full)
  }

  @Test func aResponderSeenNowAndThenStays() {
    var detector = PathChangeDetector(confirmRounds: 2, responderLifetime: 4)
    let both = PathIdentity(hops: [[r1], [r2, r3], [destination]], complete: true)
    _ = detector.observe(both)
    for round in 0..<30 {
      let hop: Set<IPAddress> = round % 3 == 0 ? [r2, r3] : [r2]
      _ = detector.observe(PathIdentity(hops: [[r1], hop, [destination]], complete: true))
    }
    #expect(detector.confirmed == both)
  }
}

/// What a finished round does to a target's state: counters, per-hop history, resets.
@Suite struct PathStateTests {
  let r1 = IPAddress("198.18.1.1")!
  let r2 = IPAddress("198.18.2.1")!
  let r3 = IPAddress("198.18.3.1")!
  let destination = IPAddress("198.19.0.1")!
  let other = IPAddress("198.19.0.2")!

  var trace: TraceOptions {
    var trace = TraceOptions()
    trace.enabled = true
    trace.maxHops = 5
    trace.confirmRounds = 2
    return trace
  }

  /// A round through `hops` (nil: silent) to the destination, 3 probes per TTL.
  func round(_ hops: [IPAddress?], reached: Bool = true, rtt: Double = 0.001) -> TraceRound {
    var round = TraceRound(maxHops: 5)
    for (index, router) in hops.enumerated() {
      round.hops[index].probesSent = 3
      guard let router else { continue }
      for _ in 0..<3 { round.recordError(.timeExceeded, ttl: index + 1, from: router, rtt: rtt) }
    }
    let ttl = hops.count + 1
    round.hops[ttl - 1].probesSent = 3
    if reached { for _ in 0..<3 { round.recordReply(ttl: ttl, from: destination, rtt: rtt) } }
    return round
  }

  func record(_ state: inout PathState, _ round: TraceRound, address: IPAddress? = nil, dontFragment: Bool = false) -> Bool {
    state.record(round, address: address ?? destination, duration: 0.05, wallClock: 1_700_000_000, dontFragment: dontFragment)
  }

  @Test func unreachableCountsOncePerRoundAndCode() {
    var state = PathState(trace: trace)
    var unreachable = TraceRound(maxHops: 5)
    for ttl in 1...5 {
      unreachable.hops[ttl - 1].probesSent = 3
      for _ in 0..<3 { unreachable.recordError(.unreachable(code: 1), ttl: ttl, from: r1, rtt: 0.001) }
    }
    _ = record(&state, unreachable)
    _ = record(&state, unreachable)
    #expect(state.unreachable == [1: 2])
    #expect(state.detector.confirmed == PathIdentity(hops: [[r1]], complete: true))
  }

  @Test func lossCountsOnEveryHopOfTheConfirmedPath() {
    var state = PathState(trace: trace)
    _ = record(&state, round([r1, r2]))
    // The destination and r2 are silent this round: the round itself ends at r1.
    _ = record(&state, round([r1, nil], reached: false))
    #expect(state.hops[0].lossRatio == 0)
    #expect(state.hops[1].lossRatio == 0.5, "r2 answered 3 of 6")
    #expect(state.hops[2].lossRatio == 0.5, "the destination answered 3 of 6")
    #expect(state.hops[3].lossRatio == nil, "past the path")
  }

  @Test func aConfirmedChangeRestartsTheHopsThatChanged() {
    var state = PathState(trace: trace)
    _ = record(&state, round([r1, r2], rtt: 0.010))
    let first = record(&state, round([r1, r3], rtt: 0.002))
    let second = record(&state, round([r1, r3], rtt: 0.002))
    #expect(!first && second)
    #expect(state.lastChangeTime == 1_700_000_000)
    #expect(state.hops[1].meanRTT == 0.002, "r2's 10 ms are not r3's")
    #expect(state.hops[0].meanRTT.map { abs($0 - 0.014 / 3) < 1e-12 } == true, "r1 stayed: its history stays")
  }

  @Test func aNewAddressStartsAfresh() {
    var state = PathState(trace: trace)
    var tooBig = round([r1, r2])
    tooBig.mtu = 1280
    var unreachable = round([r1, r2], reached: false)
    unreachable.recordError(.unreachable(code: 13), ttl: 3, from: r2, rtt: 0.001)
    _ = record(&state, tooBig, dontFragment: true)
    _ = record(&state, round([r1, r3]))
    _ = record(&state, round([r1, r3]))
    _ = record(&state, unreachable)
    #expect(state.detector.changes == 1 && state.lastChangeTime != nil && state.mtu == 1280 && state.unreachable == [13: 1])
    _ = record(&state, round([r1]), address: other)
    #expect(state.tracedAddress == other)
    #expect(state.rounds == 1 && state.detector.changes == 0)
    #expect(state.lastChangeTime == nil && state.mtu == nil && state.unreachable.isEmpty)
    #expect(state.hops[1].meanRTT == 0.001, "the old hop 2's replies are gone")
    #expect(state.hops.count == 5)
  }

  @Test func thePathMTUIsKeptOnlyWithDontFragment() {
    var state = PathState(trace: trace)
    var tooBig = round([r1])
    tooBig.mtu = 1280
    _ = record(&state, tooBig)
    #expect(state.mtu == nil)
    _ = record(&state, tooBig, dontFragment: true)
    #expect(state.mtu == 1280)
    _ = record(&state, round([r1], reached: false), dontFragment: true)
    #expect(state.mtu == 1280, "a round that did not get through says nothing about the MTU")
    _ = record(&state, round([r1]), dontFragment: true)
    #expect(state.mtu == nil, "full-size probes reached the target: no MTU limits them any more")
  }
}

/// The exposition of a traced target follows its confirmed path: hops that leave it stop
/// being exported.
@Suite struct PathSeriesTests {
  let r1 = IPAddress("198.18.1.1")!
  let r2 = IPAddress("198.18.2.1")!
  let destination = IPAddress("198.19.0.1")!

  func target() throws -> PathTarget {
    let config = try loadConfig(
      """
      targets:
        - name: far
          host: "198.19.0.1"
          trace: {max_hops: 6, confirm_rounds: 1}
      """
    ).get()
    return PathTarget(config: config.targets[0], slot: 4)
  }

  func render(_ target: PathTarget) -> [String] {
    var exposition = Exposition()
    PathSeries.collect(target, into: &exposition)
    return String(decoding: exposition.render(), as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
  }

  func round(_ hops: [IPAddress]) -> TraceRound {
    var round = TraceRound(maxHops: 6)
    for (index, address) in hops.enumerated() {
      round.hops[index].probesSent = 3
      if address == destination {
        round.recordReply(ttl: index + 1, from: address, rtt: 0.001)
      } else {
        round.recordError(.timeExceeded, ttl: index + 1, from: address, rtt: 0.001)
      }
    }
    return round
  }

  @Test func nothingBeforeTheFirstRound() throws {
    #expect(try render(target()).isEmpty)
  }

  @Test func hopSeriesEndWithTheirHop() throws {
    let target = try target()
    _ = target.state.withLock {
      $0.record(round([r1, r2, destination]), address: destination, duration: 0.1, wallClock: 1, dontFragment: false)
    }
    let long = render(target)
    #expect(long.contains { $0.hasPrefix("netprobe_path_hops{") && $0.hasSuffix(" 3") })
    #expect(long.contains { $0.contains("netprobe_path_hop_info{") && $0.contains(#"hop="3",responder="198.19.0.1""#) })
    #expect(long.contains { $0.hasPrefix("netprobe_path_hop_rtt_seconds{") && $0.contains(#"hop="3""#) })
    _ = target.state.withLock {
      $0.record(round([r1, destination]), address: destination, duration: 0.1, wallClock: 2, dontFragment: false)
    }
    let short = render(target)
    #expect(short.contains { $0.hasPrefix("netprobe_path_hops{") && $0.hasSuffix(" 2") })
    #expect(!short.contains { $0.contains(#"hop="3""#) }, "hop 3 left the path: its info, RTT and loss series are gone")
    #expect(!short.contains { $0.contains(#"responder="198.18.2.1""#) })
    #expect(short.contains { $0.contains("netprobe_path_hop_info{") && $0.contains(#"hop="2",responder="198.19.0.1""#) })
    #expect(short.contains { $0.hasPrefix("netprobe_path_changes_total{") && $0.hasSuffix(" 1") })
  }
}
