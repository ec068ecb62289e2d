import Testing
@testable import NetProbe

@Suite struct PayloadAnalyzerTests {
  typealias P = MulticastTestPackets
  let epoch: Int64 = 1_700_000_000_000_000_000
  let accepted = PayloadVerdict.accepted(oneWayDelay: nil)

  func beacon(sender: UInt32 = 1, stream: UInt32 = 1, sequence: UInt64, sent: Int64, size: Int = 64) -> [UInt8] {
    BeaconPayload(streamID: stream, senderID: sender, sequence: sequence, sendTimeNanoseconds: sent).encoded(size: size)
  }

  func config(_ format: PayloadFormat, field: SequenceField? = nil, clockRate: Int? = nil, synchronized: Bool = false)
    -> MulticastGroupConfig
  {
    MulticastGroupConfig(
      name: "g", group: IPAddress("239.1.2.3")!, port: 5000, interface: "lo", format: format,
      sequenceField: field, clockRate: clockRate, clockSynchronized: synchronized,
      location: SourceLocation(line: 1, column: 1))
  }

  @Test func rawAcceptsAnythingAndTracksNothing() {
    var analyzer = PayloadAnalyzer(config: config(.raw))
    for bytes in [[], [0x47], BeaconPayload(streamID: 1, senderID: 1, sequence: 1, sendTimeNanoseconds: 1).encoded()] {
      #expect(analyzer.analyze(P.embedded(bytes), arrival: epoch) == accepted)
    }
    #expect(analyzer.snapshot == PayloadSnapshot(sequenced: false))
  }

  @Test func beaconsFromASliceGiveOneWayDelayOnlyWithSynchronisedClocks() {
    var synchronised = PayloadAnalyzer(config: config(.beacon, synchronized: true))
    var free = PayloadAnalyzer(config: config(.beacon))
    let datagram = P.embedded(beacon(sequence: 0, sent: epoch), offset: 31)
    #expect(datagram.startIndex == 31)
    #expect(synchronised.analyze(datagram, arrival: epoch + 2_500_000) == .accepted(oneWayDelay: 0.0025))
    #expect(free.analyze(datagram, arrival: epoch + 2_500_000) == accepted)
    #expect(free.snapshot == PayloadSnapshot(sequenced: true, counts: SequenceCounts(received: 1)))
  }

  @Test func aMalformedBeaconCountsNothing() {
    var analyzer = PayloadAnalyzer(config: config(.beacon))
    var wrongMagic = beacon(sequence: 0, sent: epoch)
    wrongMagic[0] = 0x4F
    #expect(analyzer.analyze(P.embedded(Array(beacon(sequence: 0, sent: epoch).prefix(31))), arrival: epoch) == .malformed)
    #expect(analyzer.analyze(wrongMagic[...], arrival: epoch) == .malformed)
    #expect(analyzer.snapshot == PayloadSnapshot(sequenced: true))
  }

  @Test func beaconSendersAreTrackedApartAndSummed() throws {
    var analyzer = PayloadAnalyzer(config: config(.beacon))
    // Sender 1: 0, 1, 2. Sender 2: 0, 1, 3 (2 missing, within the reorder horizon). Sender 1
    // stream 2: 10, 11. Tracked apart, so no number is a duplicate of another sender's.
    let packets: [(UInt32, UInt32, UInt64)] = [(1, 1, 0), (2, 1, 0), (1, 1, 1), (2, 1, 1), (1, 1, 2), (2, 1, 3), (1, 2, 10), (1, 2, 11)]
    for (index, (sender, stream, sequence)) in packets.enumerated() {
      let sent = epoch + Int64(index) * 10_000_000
      let verdict = analyzer.analyze(beacon(sender: sender, stream: stream, sequence: sequence, sent: sent)[...], arrival: sent + 1_000_000)
      #expect(verdict == accepted)
    }
    let snapshot = analyzer.snapshot
    #expect(snapshot.counts == SequenceCounts(received: 8))
    // Constant transit: no jitter on any sender.
    #expect(try #require(snapshot.jitterSeconds) == 0)
  }

  @Test func aRestartedBeaconSenderIsAResetNotDuplicates() {
    var analyzer = PayloadAnalyzer(config: config(.beacon))
    for sequence in 0..<10 {
      let sent = epoch + Int64(sequence) * 100_000_000
      _ = analyzer.analyze(beacon(sequence: UInt64(sequence), sent: sent)[...], arrival: sent)
    }
    // A copy of packet 5 (its own send time) is a duplicate; packet 0 of a restarted
    // sender (sent after everything seen) is a reset.
    _ = analyzer.analyze(beacon(sequence: 5, sent: epoch + 500_000_000)[...], arrival: epoch + 2_000_000_000)
    #expect(analyzer.snapshot.counts == SequenceCounts(received: 11, duplicate: 1))
    _ = analyzer.analyze(beacon(sequence: 0, sent: epoch + 5_000_000_000)[...], arrival: epoch + 5_000_000_000)
    _ = analyzer.analyze(beacon(sequence: 1, sent: epoch + 5_100_000_000)[...], arrival: epoch + 5_100_000_000)
    #expect(analyzer.snapshot.counts == SequenceCounts(received: 13, duplicate: 1, resets: 1))
  }

  @Test func rtpFromASliceWithAnSSRCChange() throws {
    var analyzer = PayloadAnalyzer(config: config(.rtp))
    // PCMU, 20 ms (160 units at 8 kHz) per packet; `timestamp` is the sender's clock.
    func send(_ sequence: UInt16, ssrc: UInt32, timestamp: UInt32, at milliseconds: Int64) -> PayloadVerdict {
      let bytes = P.rtp(payloadType: 0, sequence: sequence, timestamp: timestamp, ssrc: ssrc, payload: [1, 2])
      return analyzer.analyze(P.embedded(bytes, offset: 3), arrival: epoch + milliseconds * 1_000_000)
    }
    #expect(send(100, ssrc: 0xA, timestamp: 0, at: 0) == accepted)
    #expect(send(101, ssrc: 0xA, timestamp: 160, at: 20) == accepted)
    // One lost, and 10 ms late: D = 400 − 320 = 80 units, J = 80/16.
    #expect(send(103, ssrc: 0xA, timestamp: 480, at: 70) == accepted)
    #expect(try #require(analyzer.snapshot.jitterSeconds) == 5.0 / 8000)
    // A new SSRC: new numbers and a new clock, one reset and no loss for the distance; the
    // old SSRC's hole (102) can no longer arrive and is lost.
    #expect(send(40_000, ssrc: 0xB, timestamp: 9_999_000, at: 80) == accepted)
    #expect(send(40_001, ssrc: 0xB, timestamp: 9_999_160, at: 100) == accepted)
    let snapshot = analyzer.snapshot
    #expect(snapshot.sequenced && snapshot.mpegtsErrors == nil)
    #expect(snapshot.counts == SequenceCounts(received: 5, lost: 1, resets: 1))
    // The worst of the SSRCs heard within 10 s: the old one's, until it falls silent.
    #expect(snapshot.jitterSeconds == 5.0 / 8000)
    // 10.9 s on (87,200 units at 8 kHz), only the new SSRC counts: steady, so 0.
    #expect(send(40_002, ssrc: 0xB, timestamp: 9_999_160 + 87_200, at: 11_000) == accepted)
    #expect(analyzer.snapshot.jitterSeconds == 0)
    #expect(analyzer.analyze(P.embedded([0x40] + P.rtp(sequence: 1).dropFirst()), arrival: epoch) == .malformed)
    #expect(analyzer.snapshot.counts.received == 6)
  }

  /// Two senders on one any-source group, interleaved: each SSRC keeps its own sequence and
  /// jitter, so there is one SSRC change and neither gaps nor restarts per packet.
  @Test func severalSSRCsOnOneGroupAreTrackedApart() throws {
    var analyzer = PayloadAnalyzer(config: config(.rtp))
    for index in 0..<500 {
      let at = epoch + Int64(index) * 20_000_000
      for (ssrc, first) in [(UInt32(0xA), 1000), (0xB, 60_000)] where !(ssrc == 0xB && index == 250) {
        let sequence = UInt16(truncatingIfNeeded: first + index)
        let bytes = P.rtp(payloadType: 0, sequence: sequence, timestamp: UInt32(index) * 160, ssrc: ssrc, payload: [0])
        #expect(analyzer.analyze(bytes[...], arrival: at + (ssrc == 0xB ? 1_000_000 : 0)) == accepted)
      }
    }
    let snapshot = analyzer.snapshot
    // B's number 250 was not sent: one loss; B's 16-bit wrap at 65535 is in order.
    #expect(snapshot.counts == SequenceCounts(received: 999, lost: 1, resets: 1))
    #expect(snapshot.jitterSeconds == 0)
  }

  /// More SSRCs than the table holds: the least recently heard makes room, its counters
  /// are kept, and each SSRC heard anew is one more change.
  @Test func theSSRCTableIsBounded() {
    var stream = RTPStream(clockRate: nil)
    for ssrc in UInt32(0)..<100 {
      for sequence in UInt16(0)..<3 {
        stream.record(RTPPacket(parsing: P.rtp(sequence: sequence, ssrc: ssrc)[...])!, arrival: epoch)
      }
    }
    #expect(stream.sourceCount == 64)
    #expect(stream.counts == SequenceCounts(received: 300, resets: 99))
  }

  @Test func rtpJitterNeedsAKnownClock() throws {
    var dynamic = PayloadAnalyzer(config: config(.rtp))
    var configured = PayloadAnalyzer(config: config(.rtp, clockRate: 90000))
    for index in 0..<3 {
      let bytes = P.rtp(payloadType: 96, sequence: UInt16(index), timestamp: UInt32(index) * 3000)
      // 3000 units at 90 kHz is 33.3 ms; arrivals are 40 ms apart: D = 600 units each time.
      _ = dynamic.analyze(bytes[...], arrival: epoch + Int64(index) * 40_000_000)
      _ = configured.analyze(bytes[...], arrival: epoch + Int64(index) * 40_000_000)
    }
    #expect(dynamic.snapshot.jitterSeconds == nil)
    #expect(dynamic.snapshot.received == 3)
    // J = 600/16 = 37.5, then 37.5 + (600 − 37.5)/16 = 72.65625 units.
    #expect(abs(try #require(configured.snapshot.jitterSeconds) - 72.656_25 / 90000) < 1e-12)
  }

  @Test func plainTransportStreamHasNoSequence() throws {
    var analyzer = PayloadAnalyzer(config: config(.mpegts))
    #expect(analyzer.snapshot.mpegtsErrors == MPEGTSErrorCounts())
    let datagram = P.pat(counter: 0) + P.run(pid: 0x100, from: 0, count: 3) + P.run(pid: 0x100, from: 4, count: 3)
    #expect(analyzer.analyze(P.embedded(datagram), arrival: epoch) == accepted)
    // No sync byte where the lock expects one, nor anywhere else: no lock, malformed.
    #expect(analyzer.analyze(P.embedded([UInt8](repeating: 0, count: 1000)), arrival: epoch) == .malformed)
    let snapshot = analyzer.snapshot
    #expect(!snapshot.sequenced && snapshot.received == 0 && snapshot.jitterSeconds == nil)
    #expect(try #require(snapshot.mpegtsErrors).continuity == 1)
  }

  @Test func transportStreamInsideRTP() throws {
    var analyzer = PayloadAnalyzer(config: config(.mpegts))
    func send(_ payloadType: UInt8, _ sequence: UInt16, _ payload: [UInt8]) -> PayloadVerdict {
      let bytes = P.rtp(payloadType: payloadType, sequence: sequence, timestamp: UInt32(sequence) * 900, payload: payload)
      return analyzer.analyze(P.embedded(bytes, offset: 5), arrival: epoch + Int64(sequence) * 10_000_000)
    }
    #expect(send(33, 1, P.pat(counter: 0) + P.run(pid: 0x100, from: 0, count: 6)) == accepted)
    // Payload type 96, recognised by its content (and clocked at 90 kHz like any TS over
    // RTP); one TS packet and one RTP packet lost.
    #expect(send(96, 3, P.run(pid: 0x100, from: 7, count: 7)) == accepted)
    // Type 33 but a packet's worth of bytes without a sync byte: malformed, and no counter
    // moves (RTP's neither).
    #expect(send(33, 4, [UInt8](repeating: 0, count: 200)) == .malformed)
    let snapshot = analyzer.snapshot
    #expect(snapshot.sequenced)
    #expect(snapshot.counts == SequenceCounts(received: 2))  // RTP 2 missing, not yet given up
    #expect(try #require(snapshot.mpegtsErrors).continuity == 1)
    // 900 units at 90 kHz is exactly the 10 ms between arrivals.
    #expect(snapshot.jitterSeconds == 0)
  }

  /// Datagrams the socket dropped are the host's, not the stream's: no RTP loss, and the
  /// continuity counters start again after them instead of counting an error.
  @Test func theHostsDropsAreNoLossAndNoContinuityError() throws {
    var analyzer = PayloadAnalyzer(config: config(.mpegts))
    func send(_ sequence: UInt16, dropped: UInt64 = 0) -> PayloadVerdict {
      let payload = P.pat(counter: UInt8(sequence & 0xF)) + P.run(pid: 0x100, from: UInt8((sequence * 6) & 0xF), count: 6)
      let bytes = P.rtp(sequence: sequence, timestamp: UInt32(sequence) * 900, payload: payload)
      return analyzer.analyze(P.embedded(bytes), arrival: epoch + Int64(sequence) * 10_000_000, hostDropped: dropped)
    }
    #expect(send(1) == accepted && send(2) == accepted)
    #expect(send(6, dropped: 3) == accepted)  // 3, 4 and 5 dropped by the socket
    for sequence in UInt16(7)...80 { _ = send(sequence) }
    var snapshot = analyzer.snapshot
    #expect(snapshot.counts == SequenceCounts(received: 77))
    #expect(try #require(snapshot.mpegtsErrors).continuity == 0)
    // The same gap without drops is the network's: 3 lost, and a continuity error per PID.
    _ = send(84)
    for sequence in UInt16(85)...150 { _ = send(sequence) }
    snapshot = analyzer.snapshot
    #expect(snapshot.lost == 3)
    #expect(try #require(snapshot.mpegtsErrors).continuity == 2)
  }

  @Test func anRTPHeaderAroundOtherContentIsNotTransportStream() {
    var analyzer = PayloadAnalyzer(config: config(.mpegts))
    // RTP with a 20-byte non-TS payload: neither TS in RTP nor whole TS packets.
    #expect(
      analyzer.analyze(P.rtp(payloadType: 96, sequence: 1, payload: [UInt8](repeating: 1, count: 20))[...], arrival: epoch) == .malformed)
    // 376 bytes that parse as RTP but carry no TS: read as plain TS whose first sync byte is lost.
    var plain = P.run(pid: 0x100, from: 0, count: 2)
    plain[0] = 0x80
    plain[1] = 0x60
    #expect(analyzer.analyze(plain[...], arrival: epoch) == accepted)
    #expect(analyzer.snapshot.mpegtsErrors?.syncByte == 1)
    #expect(!analyzer.snapshot.sequenced)
  }

  @Test func sequenceFieldLittleEndianAndShortPayloads() {
    var analyzer = PayloadAnalyzer(config: config(.sequence, field: SequenceField(offset: 0, width: 4, endianness: .little)))
    func send(_ sequence: UInt32, sendTime: UInt64 = 0) -> PayloadVerdict {
      // CME MDP3 style: MsgSeqNum u32 little-endian, then SendingTime u64.
      let bytes = (0..<4).map { UInt8(truncatingIfNeeded: sequence >> (8 * $0)) } + [UInt8](repeating: 0, count: 8)
      return analyzer.analyze(P.embedded(bytes, offset: 17), arrival: epoch)
    }
    #expect(send(0xFFFF_FFFE) == accepted)
    #expect(send(0xFFFF_FFFF) == accepted)
    #expect(send(2) == accepted)  // across the 32-bit wrap: 0 and 1 missing
    #expect(analyzer.analyze(P.embedded([1, 2, 3]), arrival: epoch) == .malformed)
    #expect(analyzer.snapshot == PayloadSnapshot(sequenced: true, counts: SequenceCounts(received: 3)))
    #expect(send(0) == accepted)  // within the reorder horizon: late, never lost
    for sequence in UInt32(3)...80 { _ = send(sequence) }
    #expect(analyzer.snapshot == PayloadSnapshot(sequenced: true, counts: SequenceCounts(received: 82, lost: 1, late: 1)))
  }

  @Test func sequenceFieldBigEndianAtAnOffset() {
    var analyzer = PayloadAnalyzer(config: config(.sequence, field: SequenceField(offset: 3, width: 2, endianness: .big)))
    for sequence: UInt16 in [0xFFFF, 0x0000, 0x0000, 0x0001] {
      _ = analyzer.analyze(P.embedded([9, 9, 9, UInt8(sequence >> 8), UInt8(sequence & 0xFF)]), arrival: epoch)
    }
    #expect(analyzer.snapshot.counts == SequenceCounts(received: 4, duplicate: 1))
    #expect(analyzer.analyze(P.embedded([9, 9, 9, 0]), arrival: epoch) == .malformed)
  }

  @Test func aSequenceFormatWithoutAFieldTracksNothing() {
    var analyzer = PayloadAnalyzer(format: .sequence)
    #expect(analyzer.analyze(P.embedded([1]), arrival: epoch) == accepted)
    #expect(analyzer.snapshot == PayloadSnapshot(sequenced: false))
  }
}

@Suite struct BeaconSendersTests {
  let epoch: Int64 = 1_700_000_000_000_000_000

  func packet(_ sender: UInt32, _ sequence: UInt64, sent: Int64) -> BeaconPayload {
    BeaconPayload(streamID: 7, senderID: sender, sequence: sequence, sendTimeNanoseconds: sent)
  }

  @Test func droppingTheLeastRecentSenderKeepsItsCounters() {
    var senders = BeaconSenders()
    // 65 senders, each with one hole (0 then 2): the first is dropped for the 65th, and
    // its hole, which can no longer arrive, is counted lost then.
    for sender in 0..<65 {
      for sequence: UInt64 in [0, 2] {
        senders.record(packet(UInt32(sender), sequence, sent: epoch), arrival: epoch)
      }
      #expect(senders.counts == SequenceCounts(received: UInt64(sender + 1) * 2, lost: sender == 64 ? 1 : 0))
    }
    #expect(senders.count == 64)
    // Sender 0 comes back: a fresh tracker (first), the sums carry on.
    senders.record(packet(0, 3, sent: epoch), arrival: epoch)
    #expect(senders.counts == SequenceCounts(received: 131, lost: 2))
    #expect(senders.count == 64)
  }

  @Test func theLeastRecentlyHeardIsDropped() {
    var senders = BeaconSenders()
    for sender in 0..<64 { senders.record(packet(UInt32(sender), 0, sent: epoch), arrival: epoch) }
    // Sender 0 is heard again, so sender 1 is the least recent and makes room.
    senders.record(packet(0, 1, sent: epoch), arrival: epoch)
    senders.record(packet(100, 0, sent: epoch), arrival: epoch)
    // Sender 0 kept its tracker: 1 again is a duplicate (a fresh tracker would start at it).
    senders.record(packet(0, 1, sent: epoch), arrival: epoch)
    #expect(senders.counts == SequenceCounts(received: 67, duplicate: 1))
    // Sender 1 was dropped: 0 again starts a fresh tracker instead of being a duplicate.
    senders.record(packet(1, 0, sent: epoch), arrival: epoch)
    #expect(senders.counts == SequenceCounts(received: 68, duplicate: 1))
  }

  @Test func jitterIsTheWorstOfTheSendersHeardLately() throws {
    var senders = BeaconSenders()
    // Sender 1: constant transit. Sender 2: alternately 10 ms late.
    for index in 0..<4 {
      let sent = epoch + Int64(index) * 100_000_000
      senders.record(packet(1, UInt64(index), sent: sent), arrival: sent + 1_000_000)
      senders.record(packet(2, UInt64(index), sent: sent), arrival: sent + (index % 2 == 1 ? 10_000_000 : 0))
    }
    // Sender 2: 0.01/16, then ×15/16 + 0.01/16 twice.
    var expected = 0.0
    for _ in 0..<3 { expected += (0.010 - expected) / 16 }
    #expect(abs(try #require(senders.jitterSeconds) - expected) < 1e-12)
    // Eleven seconds on, only sender 1 is heard: sender 2's figure no longer counts.
    let later = epoch + 11_000_000_000
    senders.record(packet(1, 4, sent: later), arrival: later + 1_000_000)
    #expect(try #require(senders.jitterSeconds) == 0)
  }
}
