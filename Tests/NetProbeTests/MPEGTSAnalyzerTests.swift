import Testing
@testable import NetProbe

@Suite struct MPEGTSAnalyzerTests {
  typealias P = MulticastTestPackets
  let second: Int64 = 1_000_000_000

  /// Feeds each packet as a datagram of its own, 1 ms apart, and returns the errors.
  func errors(_ packets: [[UInt8]]) -> MPEGTSErrorCounts {
    var analyzer = MPEGTSAnalyzer()
    for (index, packet) in packets.enumerated() { analyzer.analyze(packet[...], arrival: Int64(index) * 1_000_000) }
    return analyzer.errors
  }

  func counts(continuity: UInt64 = 0, syncByte: UInt64 = 0, transportError: UInt64 = 0, patMissing: UInt64 = 0)
    -> MPEGTSErrorCounts
  {
    var counts = MPEGTSErrorCounts()
    counts.continuity = continuity
    counts.syncByte = syncByte
    counts.transportError = transportError
    counts.patMissing = patMissing
    return counts
  }

  @Test func countersThatStepByOneAreClean() {
    var analyzer = MPEGTSAnalyzer()
    // 40 packets in a row (counter wraps 15 → 0 twice), seven per datagram.
    let stream = P.run(pid: 0x100, from: 3, count: 42)
    for index in 0..<6 {
      let whole = analyzer.analyze(stream[(index * 1316)..<((index + 1) * 1316)], arrival: 0)
      #expect(whole)
    }
    #expect(analyzer.errors == MPEGTSErrorCounts())
    #expect(analyzer.packets == 42)
  }

  @Test func aSkippedCounterIsOneErrorThenResynchronises() {
    let packets = [0, 1, 3, 4, 5, 9, 10].map { P.ts(pid: 0x44, counter: $0) }
    #expect(errors(packets) == counts(continuity: 2))
  }

  @Test func oneDuplicateIsLegalTwoAreNot() {
    #expect(errors([0, 1, 1, 2].map { P.ts(pid: 0x44, counter: $0) }) == counts())
    #expect(errors([0, 1, 1, 1, 2].map { P.ts(pid: 0x44, counter: $0) }) == counts(continuity: 1))
    // The allowance is per packet: a later duplicate is legal again.
    #expect(errors([0, 1, 1, 2, 2, 3].map { P.ts(pid: 0x44, counter: $0) }) == counts())
  }

  @Test func adaptationOnlyPacketsKeepTheCounter() {
    let packets = [
      P.ts(pid: 0x44, counter: 5),
      P.ts(pid: 0x44, counter: 5, payload: false, adaptation: 183),
      P.ts(pid: 0x44, counter: 11, payload: false, adaptation: 183),  // careless muxer: not checked
      P.ts(pid: 0x44, counter: 6, adaptation: 7),
      P.ts(pid: 0x44, counter: 7, adaptation: 0),
    ]
    #expect(errors(packets) == counts())
  }

  @Test func theDiscontinuityIndicatorAllowsAJump() {
    let packets = [
      P.ts(pid: 0x44, counter: 0), P.ts(pid: 0x44, counter: 1),
      P.ts(pid: 0x44, counter: 9, adaptation: 1, discontinuity: true),
      P.ts(pid: 0x44, counter: 10),
      P.ts(pid: 0x44, counter: 12),  // no indicator: an error
    ]
    #expect(errors(packets) == counts(continuity: 1))
    // Signalled on an adaptation-only packet, it frees the next payload packet.
    let signalled = [
      P.ts(pid: 0x44, counter: 0),
      P.ts(pid: 0x44, counter: 0, payload: false, adaptation: 183, discontinuity: true),
      P.ts(pid: 0x44, counter: 6), P.ts(pid: 0x44, counter: 7),
    ]
    #expect(errors(signalled) == counts())
  }

  @Test func pidsAreCheckedApartAndTheNullPIDNotAtAll() {
    let packets = [
      P.ts(pid: 0x100, counter: 0), P.ts(pid: 0x101, counter: 7), P.ts(pid: 0x100, counter: 1),
      P.ts(pid: 0x101, counter: 8), P.ts(pid: 0x1FFF, counter: 3), P.ts(pid: 0x1FFF, counter: 3),
      P.ts(pid: 0x1FFF, counter: 3), P.ts(pid: 0x1FFF, counter: 12), P.ts(pid: 0x1FFE, counter: 0),
      P.ts(pid: 0x1FFE, counter: 2),
    ]
    #expect(errors(packets) == counts(continuity: 1))
  }

  @Test func syncByteAndTransportErrorsAreCountedAndNotChecked() {
    let packets = [
      P.ts(pid: 0x44, counter: 0),
      P.ts(pid: 0x44, counter: 9, sync: 0x46),
      P.ts(pid: 0x44, counter: 9, transportError: true),
      P.ts(pid: 0x44, counter: 1),
    ]
    #expect(errors(packets) == counts(syncByte: 1, transportError: 1))
  }

  @Test func aMissingPATCountsOncePerHalfSecondWithTraffic() {
    var analyzer = MPEGTSAnalyzer()
    let start: Int64 = 1_700_000_000 * second
    func feed(_ packet: [UInt8], at milliseconds: Int64) {
      analyzer.analyze(packet[...], arrival: start + milliseconds * 1_000_000)
    }
    feed(P.pat(counter: 0), at: 0)
    feed(P.ts(pid: 0x44, counter: 0), at: 300)
    #expect(analyzer.errors.patMissing == 0)
    feed(P.ts(pid: 0x44, counter: 1), at: 600)
    #expect(analyzer.errors.patMissing == 1)
    feed(P.ts(pid: 0x44, counter: 2), at: 900)
    #expect(analyzer.errors.patMissing == 1)
    feed(P.ts(pid: 0x44, counter: 3), at: 1200)
    #expect(analyzer.errors.patMissing == 2)
    feed(P.pat(counter: 1), at: 1300)
    feed(P.ts(pid: 0x44, counter: 4), at: 1700)
    #expect(analyzer.errors.patMissing == 2)
    feed(P.ts(pid: 0x44, counter: 5), at: 1801)
    #expect(analyzer.errors.patMissing == 3)
    #expect(analyzer.errors.continuity == 0)
  }

  @Test func patsEveryFourHundredMillisecondsAreEnough() {
    var analyzer = MPEGTSAnalyzer()
    for step in 0..<20 {
      let datagram = P.pat(counter: UInt8(step & 15)) + P.run(pid: 0x44, from: UInt8(step * 6 & 15), count: 6)
      analyzer.analyze(datagram[...], arrival: Int64(step) * 400_000_000)
    }
    #expect(analyzer.errors == MPEGTSErrorCounts())
  }

  @Test func theClockStartsAtTheFirstPacket() {
    var analyzer = MPEGTSAnalyzer()
    analyzer.analyze(P.ts(pid: 0x44, counter: 0)[...], arrival: 5 * second)
    analyzer.analyze(P.ts(pid: 0x44, counter: 1)[...], arrival: 5 * second + 400_000_000)
    #expect(analyzer.errors.patMissing == 0)
    analyzer.analyze(P.ts(pid: 0x44, counter: 2)[...], arrival: 5 * second + 550_000_000)
    #expect(analyzer.errors.patMissing == 1)
  }

  @Test func onlyAPATSectionCountsAsAPAT() {
    var analyzer = MPEGTSAnalyzer()
    let ms: Int64 = 1_000_000
    // PID 0 without payload_unit_start, and with a table_id other than 0x00 (after a
    // pointer_field of 2): taken for PATs, either would put off the error at 800 ms.
    var notStart = P.ts(pid: 0, counter: 0)
    notStart[4] = 0
    notStart[5] = 0
    var otherTable = P.pat(counter: 1)
    otherTable[4] = 2
    otherTable[7] = 0x02
    analyzer.analyze(P.pat(counter: 0)[...], arrival: 0)
    analyzer.analyze(notStart[...], arrival: 400 * ms)
    analyzer.analyze(otherTable[...], arrival: 450 * ms)
    analyzer.analyze(P.ts(pid: 0x44, counter: 0)[...], arrival: 800 * ms)
    #expect(analyzer.errors.patMissing == 1)
    // A pointer_field that points past the packet is no PAT either, and no crash.
    var pastTheEnd = P.pat(counter: 2)
    pastTheEnd[4] = 0xFF
    analyzer.analyze(pastTheEnd[...], arrival: 1000 * ms)
    analyzer.analyze(P.ts(pid: 0x44, counter: 1)[...], arrival: 1400 * ms)
    #expect(analyzer.errors.patMissing == 2)
    #expect(analyzer.errors.continuity == 0)
  }

  @Test func partialPacketsAreRejectedWithoutCounting() {
    var analyzer = MPEGTSAnalyzer()
    let datagram = P.run(pid: 0x44, from: 0, count: 2)
    let short = analyzer.analyze(datagram.dropLast(), arrival: 0)
    let empty = analyzer.analyze(ArraySlice<UInt8>(), arrival: 0)
    #expect(!short && !empty)
    #expect(analyzer.packets == 0 && analyzer.errors == MPEGTSErrorCounts())
    let whole = analyzer.analyze(MulticastTestPackets.embedded(datagram), arrival: 0)
    #expect(whole)
    #expect(analyzer.packets == 2)
  }

  @Test func errorTypesHaveTheirLabelValues() {
    #expect(MPEGTSErrorType.allCases.map(\.rawValue) == ["continuity", "sync_byte", "transport_error", "pat_missing"])
    var counts = MPEGTSErrorCounts()
    for (index, type) in MPEGTSErrorType.allCases.enumerated() { counts[type] = UInt64(index + 1) }
    #expect(counts.continuity == 1 && counts.syncByte == 2 && counts.transportError == 3 && counts.patMissing == 4)
  }
}
