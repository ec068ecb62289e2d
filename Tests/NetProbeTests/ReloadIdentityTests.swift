import Testing
@testable import NetProbe

/// A reload keeps a target's (or group's) state when it measures the same thing, and
/// starts afresh when it measures something else (issue 18).
@Suite struct ReloadIdentityTests {
  func target(_ body: (inout ProbeOptions) -> Void = { _ in }, name: String = "t", host: String = "198.18.0.1") -> TargetConfig {
    var options = ProbeOptions()
    body(&options)
    return TargetConfig(name: name, host: host, options: options, location: SourceLocation(line: 3, column: 5))
  }

  @Test func howOftenAndUnderWhichLabelsIsTheSameMeasurement() {
    let base = target()
    let same: [(String, TargetConfig)] = [
      ("interval", target { $0.interval = .milliseconds(500) }),
      ("timeout", target { $0.timeout = .seconds(3) }),
      ("window", target { $0.window = 10 }),
      ("dns_refresh", target { $0.dnsRefresh = .seconds(30) }),
      ("labels", target { $0.labels = [Label("site", "fra")] }),
      (
        "trace",
        target {
          $0.trace.enabled = true
          $0.trace.interval = .seconds(5)
        }
      ),
      (
        "place in the file",
        TargetConfig(name: "t", host: "198.18.0.1", options: ProbeOptions(), location: SourceLocation(line: 9, column: 5))
      ),
    ]
    for (what, other) in same { #expect(base.measuresSameAs(other), "\(what)") }
    let different: [(String, TargetConfig)] = [
      ("name", target(name: "u")),
      ("host", target(host: "198.18.0.2")),
      ("payload_size", target { $0.payloadSize = 1400 }),
      ("ttl", target { $0.ttl = 3 }),
      ("tos", target { $0.tos = 0xB8 }),
      ("dont_fragment", target { $0.dontFragment = true }),
      ("source", target { $0.source = IPAddress("198.18.0.9") }),
      ("interface", target { $0.interface = "eth1" }),
      ("family", target { $0.family = .ip4 }),
      ("socket", target { $0.socket = .raw }),
    ]
    for (what, other) in different { #expect(!base.measuresSameAs(other), "\(what)") }
  }

  @Test func aKeptTargetKeepsCountersAndWindowUnderNewSettings() {
    let buckets = PingSettings().rttBuckets
    let running = PingTarget(config: target(), slot: 7, rttBuckets: buckets)
    running.state.withLock { state in
      state.sent = 35
      state.received = 34
      for index in 0..<35 { state.window.record(index == 3 ? nil : 0.001 * Double(index + 1)) }
      state.histogram.record(0.002)
    }
    let faster = target {
      $0.interval = .milliseconds(500)
      $0.labels = [Label("site", "fra")]
    }
    #expect(running.canCarryOver(to: faster))
    #expect(running.update(to: faster, rttBuckets: buckets), "the interval changed: the loop reschedules")
    #expect(running.config.options.interval == .milliseconds(500))
    #expect(running.config.options.labels == [Label("site", "fra")])
    let state = running.state.withLock { $0 }
    #expect(state.sent == 35 && state.received == 34)
    #expect(state.window.summary.probes == 35 && state.histogram.snapshot.count == 1)
    #expect(!running.update(to: faster, rttBuckets: buckets), "nothing changed the second time")

    // A smaller window keeps its newest outcomes; other buckets start the histogram afresh.
    _ = running.update(
      to: target {
        $0.interval = .milliseconds(500)
        $0.window = 10
      }, rttBuckets: [0.1, 1])
    let resized = running.state.withLock { $0 }
    #expect(resized.window.capacity == 10 && resized.window.summary.probes == 10 && resized.window.summary.lossRatio == 0)
    #expect(resized.histogram.upperBounds == [0.1, 1] && resized.histogram.snapshot.count == 0)
    #expect(resized.sent == 35)

    #expect(!running.canCarryOver(to: target { $0.payloadSize = 1000 }))
  }

  @Test func theLedgerGrowsKeepingProbesInFlight() {
    var ledger = ProbeLedger(capacity: 16)
    var sent: [UInt32] = []
    for index in 0..<40 { sent.append(ledger.send(sendTime: Int64(index), deadline: 1_000).sequence) }
    ledger.grow(to: 64)
    #expect(ledger.capacity == 64)
    // The 16 newest are still known (answered in time), older ones are late, as before.
    #expect(ledger.reply(sequence: sent[39], sendTime: 39, receiveTime: 50, now: 10) == .inTime(rttNanoseconds: 11))
    #expect(ledger.reply(sequence: sent[24], sendTime: 24, receiveTime: 50, now: 10) == .inTime(rttNanoseconds: 26))
    #expect(ledger.reply(sequence: sent[24], sendTime: 24, receiveTime: 50, now: 10) == .duplicate)
    #expect(ledger.reply(sequence: sent[23], sendTime: 23, receiveTime: 50, now: 10) == .late(newlyLost: false))
    #expect(ledger.send(sendTime: 41, deadline: 1_000).sequence == 40)
  }

  @Test func theWindowResizesKeepingTheNewest() {
    var window = ProbeWindow(capacity: 4)
    for rtt in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] { window.record(rtt) }
    window.resize(to: 2)
    #expect(window.summary.rttMin == 5 && window.summary.rttMax == 6 && window.count == 2)
    window.resize(to: 8)
    window.record(nil)
    #expect(window.count == 3 && window.summary.lossRatio == 1.0 / 3 && window.summary.rttMean == 5.5)
  }

  @Test func aPathSurvivesATimingChangeButNotAnotherProbing() {
    let trace = TraceOptions()
    var slower = trace
    slower.interval = .seconds(300)
    slower.confirmRounds = 4
    #expect(trace.tracesSamePathAs(slower))
    for change in [
      { (t: inout TraceOptions) in t.maxHops = 8 }, { $0.probesPerHop = 1 }, { $0.varyFlow = true }, { $0.probeProtocol = .udp },
    ] {
      var other = trace
      change(&other)
      #expect(!trace.tracesSamePathAs(other))
    }
    var options = ProbeOptions()
    options.trace.enabled = true
    let config = TargetConfig(name: "t", host: "198.18.0.1", options: options, location: SourceLocation(line: 1, column: 1))
    let path = PathTarget(config: config, slot: 1)
    path.state.withLock { $0.rounds = 12 }
    var kept = config
    kept.options.trace.confirmRounds = 5
    kept.options.labels = [Label("site", "a")]
    #expect(path.canCarryOver(to: kept))
    #expect(!path.update(to: kept), "the interval is unchanged")
    #expect(path.state.withLock { $0.detector.confirmRounds } == 5 && path.state.withLock { $0.rounds } == 12)
    #expect(path.config.options.labels == [Label("site", "a")], "the path's series take the new labels")
    kept.options.trace.interval = .seconds(10)
    #expect(path.update(to: kept))
    #expect(path.trace.interval == .seconds(10))
    var elsewhere = kept
    elsewhere.options.payloadSize += 8
    #expect(!path.canCarryOver(to: elsewhere), "other probes measure another thing")
    var deeper = kept
    deeper.options.trace.maxHops += 1
    #expect(!path.canCarryOver(to: deeper), "a round sized for the old hop count must not take the new one")
  }

  @Test func aGroupKeepsItsJoinWhenOnlyItsJudgementOrLabelsChange() throws {
    let group = MulticastGroupConfig(
      name: "g", group: try #require(IPAddress("239.1.1.1")), port: 5000, interface: "lo",
      location: SourceLocation(line: 2, column: 5))
    var relabelled = group
    relabelled.labels = [Label("feed", "a")]
    relabelled.expectedRate = 100
    relabelled.noDataTimeout = .seconds(30)
    relabelled.location = SourceLocation(line: 20, column: 5)
    #expect(group.measuresSameAs(relabelled))
    var moved = group
    moved.port = 5001
    #expect(!group.measuresSameAs(moved))
    var reformatted = group
    reformatted.format = .rtp
    #expect(!group.measuresSameAs(reformatted))

    let running = MulticastGroup(config: group, delayBuckets: [1])
    running.streams[""]?.stats.withLock { $0.packets = 99 }
    running.update(to: relabelled)
    #expect(running.current.labels == [Label("feed", "a")] && running.current.expectedRate == 100)
    #expect(running.config.labels.isEmpty, "the receive path's settings are the original ones")
    #expect(running.streams[""]?.stats.withLock { $0.packets } == 99)
  }
}
