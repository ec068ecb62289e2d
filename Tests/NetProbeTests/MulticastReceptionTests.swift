import Testing

@testable import NetProbe

@Suite struct MulticastReceptionTests {
  let second: Int64 = 1_000_000_000

  @Test func rateIsTheMeanOfCompleteSeconds() {
    var meter = RateMeter()
    #expect(meter.rate(atSecond: 100) == nil)
    var starting = RateMeter()
    starting.record(atSecond: 100)
    // At 101 only the first second is complete, and it is left out (the stream began inside it).
    #expect(starting.rate(atSecond: 101) == nil)
    #expect(starting.rate(atSecond: 102) == 0)
    for second in Int64(100)...104 {
      for _ in 0..<(second == 104 ? 7 : 10) { meter.record(atSecond: second) }
    }
    // At 104 the seconds 101…103 count: 10 each. Second 104 is still filling.
    #expect(meter.rate(atSecond: 104) == 10)
    // At 105, 104 (7 packets) is complete too.
    #expect(meter.rate(atSecond: 105) == (30 + 7) / 4.0)
  }

  @Test func rateFallsToZeroWhenTheStreamStops() {
    var meter = RateMeter()
    for second in Int64(50)...60 { for _ in 0..<5 { meter.record(atSecond: second) } }
    #expect(meter.rate(atSecond: 61) == 5)
    #expect(meter.rate(atSecond: 66)! < 5)
    #expect(meter.rate(atSecond: 71) == 0)
    #expect(meter.rate(atSecond: 1000) == 0)
  }

  @Test func rateIgnoresTimestampsFromThePast() {
    var meter = RateMeter()
    meter.record(atSecond: 10)
    meter.record(atSecond: 11)
    meter.record(atSecond: 12)
    meter.record(atSecond: 11)  // late: not added to the current second
    #expect(meter.rate(atSecond: 13) == 2 / 2.0)
  }

  @Test func joinTestLeavesWaitsRejoinsAndMeasures() {
    var test = JoinLatencyTest(interval: .seconds(30))
    test.leaveWait = .seconds(2)
    test.deadline = .seconds(5)
    var schedule = JoinTestSchedule(test: test, joinedAt: 0)
    #expect(schedule.nextEvent == 30 * second)
    #expect(schedule.step(now: 29 * second, allArrived: true) == .none)
    #expect(schedule.step(now: 30 * second, allArrived: true) == .leave)
    #expect(schedule.isLeft)
    #expect(schedule.step(now: 31 * second, allArrived: true) == .none)
    #expect(schedule.step(now: 32 * second, allArrived: false) == .rejoin)
    #expect(!schedule.isLeft)
    #expect(schedule.nextEvent == 37 * second)
    // The first packet arrived: the wait ends and the next test is an interval later.
    #expect(schedule.step(now: 33 * second, allArrived: true) == .none)
    #expect(schedule.phase == .steady(nextLeave: 63 * second))
  }

  @Test func joinTestWithoutAPacketExpiresAtItsDeadline() {
    var test = JoinLatencyTest(interval: .seconds(10))
    test.leaveWait = .seconds(1)
    test.deadline = .seconds(3)
    var schedule = JoinTestSchedule(test: test, joinedAt: 5 * second)
    #expect(schedule.step(now: 15 * second, allArrived: true) == .leave)
    #expect(schedule.step(now: 16 * second, allArrived: true) == .rejoin)
    #expect(schedule.step(now: 18 * second, allArrived: false) == .none)
    #expect(schedule.step(now: 19 * second, allArrived: false) == .expire)
    #expect(schedule.phase == .steady(nextLeave: 29 * second))
  }

  @Test func theDefaultLeaveWaitOutlastsTheLastMemberQueryTime() {
    // Last Member Query Count (the robustness, 2) × Last Member Query Interval (1 s): the
    // router prunes the group 2 s after the leave; the rejoin must come later.
    let lastMemberQueryTime: Duration = .seconds(2 * 1)
    #expect(JoinLatencyTest(interval: .seconds(60)).leaveWait > lastMemberQueryTime)
    #expect(JoinLatencyTest(interval: .seconds(60)).leaveWait == .seconds(3))
  }

  @Test func aJoinOutsideTheTestRestartsTheInterval() {
    var schedule = JoinTestSchedule(test: JoinLatencyTest(interval: .seconds(60)), joinedAt: 0)
    schedule.joinedOutsideTest(at: 50 * second)
    #expect(schedule.nextEvent == 110 * second)
  }

  @Test func aJoinTestsLatencyRunsFromItsOwnJoinAcrossRetries() throws {
    let config = MulticastGroupConfig(
      name: "a", group: try #require(IPAddress("239.1.1.1")), port: 5000, interface: "eth0",
      joinLatencyTest: JoinLatencyTest(interval: .seconds(30)), location: SourceLocation(line: 1, column: 1))
    var stats = StreamStats(analyzer: PayloadAnalyzer(config: config), delayBuckets: [0.001])
    stats.joined(at: 5 * second, afterLeave: false)
    #expect(stats.awaitingSince == 5 * second && !stats.joinTestPending)
    stats.awaitingSince = nil  // its first packet came
    // The test joins again at 100 s; that join fails, maintain's retry works at 101 s: the
    // test's latency still runs from 100 s.
    stats.joinTestStarted(at: 100 * second)
    #expect(stats.joinTestPending && stats.awaitingSince == 100 * second)
    stats.joined(at: 101 * second, afterLeave: true)
    #expect(stats.joinTestPending && stats.awaitingSince == 100 * second)
    // After the test (its packet came), a join for another reason starts a new wait.
    stats.joinTestPending = false
    stats.awaitingSince = nil
    stats.joined(at: 200 * second, afterLeave: false)
    #expect(stats.awaitingSince == 200 * second)
    // A join while an earlier join outside a test still waits: the new one counts.
    stats.joined(at: 300 * second, afterLeave: false)
    #expect(stats.awaitingSince == 300 * second)
  }

  /// A rejoin that repairs an outage (the interface came back, the kernel lost the
  /// membership) keeps the sequence accounting: the numbers sent meanwhile are lost, as on
  /// a group that stayed joined. Only the join latency test's own leave is forgiven.
  @Test func onlyAJoinTestsLeaveIsForgivenAcrossARejoin() throws {
    let config = MulticastGroupConfig(
      name: "a", group: try #require(IPAddress("232.1.1.1")), port: 5000, interface: "eth0",
      sources: [try #require(IPAddress("198.18.0.9"))], format: .sequence,
      sequenceField: SequenceField(offset: 0, width: 4, endianness: .big),
      location: SourceLocation(line: 1, column: 1))
    func stream(across afterLeave: Bool) -> PayloadSnapshot {
      var stats = StreamStats(analyzer: PayloadAnalyzer(config: config), delayBuckets: [0.001])
      func receive(_ range: ClosedRange<UInt32>) {
        for sequence in range {
          stats.packets += 1
          _ = stats.analyzer.analyze(
            MulticastTestPackets.embedded(MulticastTestPackets.withBigEndian(UInt64(sequence), width: 4)),
            arrival: 0)
        }
      }
      stats.joined(at: 0, afterLeave: false)
      receive(1...100)
      stats.joined(at: 10 * second, afterLeave: afterLeave)  // 101...600 never arrive
      receive(601...800)
      return stats.analyzer.snapshot
    }
    #expect(stream(across: false).counts == SequenceCounts(received: 300, lost: 500))
    #expect(stream(across: true).counts == SequenceCounts(received: 300))
  }

  /// The series a group exports: the one-way delay histogram only for beacon groups whose
  /// clocks are synchronised, the join test's series only when the group has a test.
  @Test func optionalSeriesFollowTheConfig() throws {
    let address = try #require(IPAddress("239.1.1.1"))
    func names(format: PayloadFormat, clockSynchronized: Bool, joinTest: Bool) -> Set<String> {
      let config = MulticastGroupConfig(
        name: "g", group: address, port: 5000, interface: "eth0", format: format,
        clockSynchronized: clockSynchronized,
        joinLatencyTest: joinTest ? JoinLatencyTest(interval: .seconds(30)) : nil,
        location: SourceLocation(line: 1, column: 1))
      var exposition = Exposition()
      MulticastSeries.collect(
        MulticastGroup(config: config, delayBuckets: [0.001, 0.01]), membership: KernelMembership(), now: 0,
        second: 0, into: &exposition)
      let text = String(decoding: exposition.render(), as: UTF8.self)
      return Set(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { String($0.prefix { $0 != "{" && $0 != " " }) })
    }
    let delay: Set = [
      "netprobe_multicast_one_way_delay_seconds_bucket", "netprobe_multicast_one_way_delay_seconds_sum",
      "netprobe_multicast_one_way_delay_seconds_count",
    ]
    let joinTest: Set = [
      "netprobe_multicast_join_test_latency_seconds_bucket", "netprobe_multicast_join_test_latency_seconds_sum",
      "netprobe_multicast_join_test_latency_seconds_count", "netprobe_multicast_join_test_failures_total",
    ]
    let plain = names(format: .beacon, clockSynchronized: false, joinTest: false)
    #expect(plain.contains("netprobe_multicast_packets_received_total") && plain.contains("netprobe_multicast_packets_lost_total"))
    #expect(plain.isDisjoint(with: delay), "no one-way delay without clock_synchronized")
    #expect(plain.isDisjoint(with: joinTest), "no join test series without a join_latency_test")
    let full = names(format: .beacon, clockSynchronized: true, joinTest: true)
    #expect(delay.isSubset(of: full) && joinTest.isSubset(of: full), "\(full.sorted())")
    // clock_synchronized means nothing for a format that carries no send time.
    #expect(names(format: .raw, clockSynchronized: true, joinTest: false).isDisjoint(with: delay))
  }

  /// Staleness: a stream silent for no_data_timeout keeps its counters but no windowed
  /// gauge (rate 0, deviation -1, no jitter), and its pending holes are settled as lost.
  @Test func aSilentStreamLosesItsGaugesAndSettlesItsTail() throws {
    let config = MulticastGroupConfig(
      name: "g", group: try #require(IPAddress("239.1.1.1")), port: 5000, interface: "eth0",
      format: .rtp, expectedRate: 50, noDataTimeout: .seconds(1),
      location: SourceLocation(line: 1, column: 1))
    let group = MulticastGroup(config: config, delayBuckets: [0.001])
    let stream = try #require(group.streams[""])
    let epoch: Int64 = 1_700_000_000 * second
    let step: Int64 = 20_000_000
    func receive(_ sequence: UInt16, at index: Int64) {
      // 20 ms of RTP clock per packet, arrivals alternately 1 ms late: a jitter above 0.
      let arrival = epoch + index * step + (index % 2) * 1_000_000
      let datagram = MulticastTestPackets.rtp(sequence: sequence, timestamp: UInt32(index) * 1800)
      stream.stats.withLock { stats in
        #expect(stats.analyzer.analyze(datagram[...], arrival: arrival) == .accepted(oneWayDelay: nil))
        stats.packets += 1
        stats.lastPacketMonotonic = index * step
        stats.rate.record(atSecond: arrival / second)
      }
    }
    for index in Int64(0)..<500 where index != 490 { receive(UInt16(index), at: index) }
    func scrape(after silence: Int64) -> [String: Double] {
      var exposition = Exposition()
      MulticastSeries.collect(
        group, membership: KernelMembership(), now: 499 * step + silence,
        second: (epoch + 499 * step + silence) / second, into: &exposition)
      var values: [String: Double] = [:]
      for line in String(decoding: exposition.render(), as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
        let name = String(line.prefix { $0 != "{" && $0 != " " })
        if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { values[name] = value }
      }
      return values
    }
    let live = scrape(after: 500_000_000)
    #expect(live["netprobe_multicast_receiving"] == 1)
    #expect((live["netprobe_multicast_jitter_seconds"] ?? 0) > 0)
    #expect(abs((live["netprobe_multicast_rate_packets_per_second"] ?? 0) - 50) < 1)
    #expect(live["netprobe_multicast_packets_lost_total"] == 0, "hole 490 still pending, 9 behind")
    let silent = scrape(after: 1_500_000_000)
    #expect(silent["netprobe_multicast_receiving"] == 0)
    #expect(silent["netprobe_multicast_jitter_seconds"] == nil)
    #expect(silent["netprobe_multicast_rate_packets_per_second"] == 0)
    #expect(silent["netprobe_multicast_rate_deviation_ratio"] == -1)
    #expect(silent["netprobe_multicast_packets_lost_total"] == 1)
    // Settled once: scraping again counts nothing more, and the hole's packet coming now is
    // a duplicate (its number already counted lost), not late.
    #expect(scrape(after: 2_500_000_000)["netprobe_multicast_packets_lost_total"] == 1)
    receive(490, at: 600)
    let back = scrape(after: 101 * step)
    #expect(back["netprobe_multicast_packets_lost_total"] == 1)
    #expect(back["netprobe_multicast_packets_duplicate_total"] == 1 && back["netprobe_multicast_packets_late_total"] == 0)
    #expect(back["netprobe_multicast_receiving"] == 1)
  }

  @Test func streamsFollowTheSources() throws {
    let source = try #require(IPAddress("198.18.3.2"))
    let other = try #require(IPAddress("198.18.3.3"))
    let group = try #require(IPAddress("239.1.1.1"))
    let ssm = MulticastGroup(
      config: MulticastGroupConfig(
        name: "a", group: group, port: 5000, interface: "eth0", sources: [source],
        location: SourceLocation(line: 1, column: 1)),
      delayBuckets: [0.001])
    #expect(ssm.stream(for: source)?.source == source)
    #expect(ssm.stream(for: other) == nil)
    let asm = MulticastGroup(
      config: MulticastGroupConfig(
        name: "b", group: group, port: 5000, interface: "eth0",
        location: SourceLocation(line: 1, column: 1)),
      delayBuckets: [0.001])
    #expect(asm.stream(for: other) === asm.streams[""])
    let v6 = try #require(IPAddress("2001:db8::10"))
    let ssm6 = MulticastGroup(
      config: MulticastGroupConfig(
        name: "c", group: try #require(IPAddress("ff3e::1")), port: 5000, interface: "eth0",
        sources: [v6], location: SourceLocation(line: 1, column: 1)),
      delayBuckets: [0.001])
    // A received address (no zone) finds the stream labelled with its text.
    #expect(ssm6.stream(for: .v6(IPv6Bytes(v6.bytes), zone: nil)) === ssm6.streams["2001:db8::10"])
    #expect(ssm6.stream(for: try #require(IPAddress("2001:db8::11"))) == nil)
  }

  @Test func aMembershipTheKernelLostIsRepairedWithBackoff() {
    var state = JoinState()
    func checks(_ listed: [Bool]) -> [Bool] { listed.map { state.kernelCheck(listed: $0) } }
    // Missing for three checks (seconds): join again.
    #expect(checks([true, false, false, false]) == [false, false, false, true])
    // Still missing after that rejoin: the next one waits twice as long, and so on.
    #expect(checks(Array(repeating: false, count: 6)) == [false, false, false, false, false, true])
    var waits: [Int] = []
    var count = 0
    while waits.count < 8 {
      count += 1
      if state.kernelCheck(listed: false) {
        waits.append(count)
        count = 0
      }
    }
    #expect(waits == [12, 24, 48, 96, 192, 300, 300, 300])
    // Listed again: the backoff starts over; a moment's absence is no reason to rejoin.
    #expect(checks([true, false, false, true, false, false, false]) == [false, false, false, false, false, false, true])
  }

  @Test func joinErrorsCountOncePerEpisode() {
    var state = JoinState()
    // Retried every second: one episode, one count, one log line.
    func failures(_ errnos: [String]) -> [Bool] { errnos.map { state.recordFailure($0) } }
    #expect(failures(Array(repeating: "EADDRINUSE", count: 5)) == [true, false, false, false, false])
    #expect(state.errors == ["EADDRINUSE": 1] && !state.joined)
    // Another errno starts another episode; a successful join ends it.
    #expect(failures(["ENODEV", "ENODEV"]) == [true, false])
    state.joined = true
    state.lastError = nil
    #expect(failures(["ENODEV"]) == [true])
    #expect(state.errors == ["EADDRINUSE": 1, "ENODEV": 2])
  }

  @Test func sysctlsAreReadFromProc() throws {
    let limit = try #require(FileContents.sysctl("net.ipv4.igmp_max_msf"))
    #expect(limit > 0)
    #expect(FileContents.sysctl("net.ipv4.no_such_setting") == nil)
    #expect(throws: SystemError.self) { try FileContents.read("/nonexistent/file") }
  }
}
