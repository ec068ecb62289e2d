import Testing
@testable import NetProbe

@Suite struct ProbeWindowTests {
  @Test func summarisesLossRTTAndJitter() throws {
    var window = ProbeWindow(capacity: 5)
    #expect(window.summary == ProbeWindow.Summary(probes: 0, lossRatio: nil))
    for rtt in [0.010, nil, 0.014, 0.012, nil] { window.record(rtt) }
    let summary = window.summary
    #expect(summary.probes == 5)
    #expect(summary.lossRatio == 0.4)
    // RTTs are kept as Float: equal to 8 significant digits.
    #expect(abs(try #require(summary.rttMin) - 0.010) < 1e-9)
    #expect(abs(try #require(summary.rttMax) - 0.014) < 1e-9)
    #expect(abs(try #require(summary.rttMean) - 0.012) < 1e-9)
    #expect(abs(try #require(summary.rttStandardDeviation) - 0.0016329931618554536) < 1e-9)
    // Consecutive answered probes: 0.010→0.014 (0.004), 0.014→0.012 (0.002).
    #expect(abs(try #require(summary.jitter) - 0.003) < 1e-9)
  }

  @Test func forgetsTheOldestProbeAndRecovers() {
    var window = ProbeWindow(capacity: 4)
    for _ in 0..<4 { window.record(nil) }
    #expect(window.summary.lossRatio == 1)
    #expect(window.summary.rttMean == nil && window.summary.jitter == nil)
    for step in 1...4 {
      window.record(0.001)
      #expect(window.summary.lossRatio == Double(4 - step) / 4)
    }
    #expect(window.summary.probes == 4)
  }

  @Test func smoothedJitterFollowsRFC3550() {
    var jitter = SmoothedJitter()
    jitter.record(0.010)
    #expect(jitter.value == 0)
    jitter.record(0.026)
    #expect(abs(jitter.value - 0.001) < 1e-15)
    jitter.record(0.026)
    #expect(abs(jitter.value - 0.0009375) < 1e-15)
  }

  @Test func histogramBucketsByUpperBound() {
    var histogram = Histogram(upperBounds: [0.001, 0.01])
    for value in [0.0005, 0.001, 0.002, 0.5] { histogram.record(value) }
    #expect(histogram.snapshot == HistogramSnapshot(upperBounds: [0.001, 0.01], bucketCounts: [2, 1], sum: 0.5035, count: 4))
  }
}

@Suite struct ProbeLedgerTests {
  @Test func classifiesEachReplyOnce() {
    var ledger = ProbeLedger(capacity: 8)
    let first = ledger.send(sendTime: 1_000, deadline: 5_000)
    #expect(first.sequence == 0 && !first.evictedPending)
    let result1 = ledger.reply(sequence: 0, sendTime: 1_000, receiveTime: 1_250, now: 2_000)
    #expect(result1 == .inTime(rttNanoseconds: 250))
    let result2 = ledger.reply(sequence: 0, sendTime: 1_000, receiveTime: 1_300, now: 2_100)
    #expect(result2 == .duplicate)
  }

  @Test func lateRepliesAreNeverCountedInTime() {
    var ledger = ProbeLedger(capacity: 8)
    _ = ledger.send(sendTime: 1_000, deadline: 5_000)
    _ = ledger.send(sendTime: 2_000, deadline: 6_000)
    // Deadline passed and expired: a later reply is late.
    let result3 = ledger.expire(sequence: 0, now: 5_000)
    #expect(result3)
    let result4 = ledger.expire(sequence: 0, now: 5_001)
    #expect(!result4)
    let result5 = ledger.reply(sequence: 0, sendTime: 1_000, receiveTime: 9_000, now: 9_000)
    #expect(result5 == .late(newlyLost: false))
    let result6 = ledger.reply(sequence: 0, sendTime: 1_000, receiveTime: 9_100, now: 9_100)
    #expect(result6 == .duplicate)
    // Deadline passed but not yet expired: late, and the loss is recorded by the reply.
    let result7 = ledger.reply(sequence: 1, sendTime: 2_000, receiveTime: 7_000, now: 7_000)
    #expect(result7 == .late(newlyLost: true))
    let result8 = ledger.expire(sequence: 1, now: 7_000)
    #expect(!result8)
  }

  @Test func forgedSequencesAndSendTimesAreNotOurs() {
    var ledger = ProbeLedger(capacity: 8)
    _ = ledger.send(sendTime: 1_000, deadline: 5_000)
    let result9 = ledger.reply(sequence: 0, sendTime: 999, receiveTime: 1_500, now: 1_500)
    #expect(result9 == .notOurs)
    let result10 = ledger.reply(sequence: 7, sendTime: 1_000, receiveTime: 1_500, now: 1_500)
    #expect(result10 == .notOurs)
    let result11 = ledger.reply(sequence: 0, sendTime: 1_000, receiveTime: 1_500, now: 1_500)
    #expect(result11 == .inTime(rttNanoseconds: 500))
  }

  @Test func repliesOlderThanTheRingAreLate() {
    var ledger = ProbeLedger(capacity: 8)
    for index in 0..<20 { _ = ledger.send(sendTime: Int64(index), deadline: Int64(index) + 100) }
    let result12 = ledger.reply(sequence: 2, sendTime: 2, receiveTime: 500, now: 500)
    #expect(result12 == .late(newlyLost: false))
  }

  @Test func aPendingProbeOverwrittenInTheRingIsReported() {
    var ledger = ProbeLedger(capacity: 8)
    for index in 0..<8 { _ = ledger.send(sendTime: Int64(index), deadline: 1_000_000) }
    let overwritten = ledger.send(sendTime: 9, deadline: 1_000_000)
    #expect(overwritten.evictedPending)
  }
}

/// One meaning of a failed send: a probe the kernel refuses is a lost probe, in the
/// counters and in the gauges alike (issue 20: EMSGSIZE counted as loss by the gauge but
/// not as sent by the counter).
@Suite struct PingSendAccountingTests {
  func state(window: Int) -> PingTargetState {
    PingTargetState(
      ledger: ProbeLedger(capacity: 256), window: ProbeWindow(capacity: window),
      histogram: Histogram(upperBounds: [0.01, 0.1]), address: IPAddress("198.19.0.1")!)
  }

  @Test func refusedSendsAreSentAndLost() throws {
    var state = state(window: 100)
    let address = IPAddress("198.19.0.1")!
    var sequences: [UInt32] = []
    // 100 probes, one per second: the first 13 answered, the 87 after them refused with
    // EMSGSIZE (the kernel learned a smaller path MTU).
    for index in 0..<100 {
      let now = Int64(index) * 1_000_000_000
      let sequence = state.beginProbe(sendTime: now, deadline: now + 500_000_000)
      sequences.append(sequence)
      state.probeHandedOver(refused: index < 13 ? nil : "EMSGSIZE")
      if index < 13 {
        #expect(
          state.reply(
            sequence: sequence, sendTime: now, receiveTime: now + 1_000_000, now: now + 1_000_000,
            source: address, payloadMatches: true, ttl: 63) == nil)
      }
    }
    for (index, sequence) in sequences.enumerated() { state.expire(sequence: sequence, now: Int64(index) * 1_000_000_000 + 500_000_000) }
    #expect(state.sent == 100)
    #expect(state.received == 13)
    #expect(state.sendErrors == ["EMSGSIZE": 87])
    let loss = try #require(state.window.summary.lossRatio)
    #expect(loss == 0.87)
    #expect(loss == Double(state.sent - state.received) / Double(state.sent), "counters and gauge agree")
  }

  @Test func aReplyFromAnotherAddressCountsForNothing() {
    var state = state(window: 10)
    let sequence = state.beginProbe(sendTime: 0, deadline: 500)
    state.probeHandedOver(refused: nil)
    #expect(
      state.reply(
        sequence: sequence, sendTime: 0, receiveTime: 10, now: 10, source: IPAddress("198.19.0.2")!,
        payloadMatches: true, ttl: 63) == .wrongSource)
    state.expire(sequence: sequence, now: 500)
    #expect(state.received == 0 && state.window.summary.lossRatio == 1)
  }
}
