import Testing

@testable import NetProbe

/// MPEG-TS read as a byte stream across datagrams (`TransportStreamFramer` through
/// `MPEGTSAnalyzer`), and the stream's discontinuities.
@Suite struct TransportStreamFramerTests {
  typealias P = MulticastTestPackets
  let ms: Int64 = 1_000_000
  let epoch: Int64 = 1_700_000_000_000_000_000

  /// A stream as a muxer writes it: a PAT every 20 packets, the rest alternating between
  /// two PIDs, counters stepping by one; `skip` leaves out those packet indices (a
  /// continuity error each on their PID).
  func stream(packets: Int, skip: Set<Int> = []) -> [UInt8] {
    var counters = [0: UInt8(0), 0x100: 0, 0x101: 0]
    var bytes: [UInt8] = []
    for index in 0..<packets {
      let pid = index % 20 == 0 ? 0 : 0x100 + index % 2
      let packet = pid == 0 ? P.pat(counter: counters[pid]!) : P.ts(pid: pid, counter: counters[pid]!)
      counters[pid] = (counters[pid]! + 1) & 0x0F
      if !skip.contains(index) { bytes += packet }
    }
    return bytes
  }

  /// `bytes` cut into datagrams of `size` bytes (the last one shorter).
  func datagrams(_ bytes: [UInt8], size: Int) -> [ArraySlice<UInt8>] {
    stride(from: 0, to: bytes.count, by: size).map { bytes[$0..<min($0 + size, bytes.count)] }
  }

  /// Feeds the datagrams 10 ms apart; returns the analyzer and how many were malformed.
  func analyze(_ datagrams: [ArraySlice<UInt8>], analyzer: MPEGTSAnalyzer = MPEGTSAnalyzer()) -> (MPEGTSAnalyzer, Int) {
    var analyzer = analyzer
    var malformed = 0
    for (index, datagram) in datagrams.enumerated() where !analyzer.analyze(datagram, arrival: epoch + Int64(index) * 10 * ms) {
      malformed += 1
    }
    return (analyzer, malformed)
  }

  func counts(continuity: UInt64 = 0, syncByte: UInt64 = 0, patMissing: UInt64 = 0) -> MPEGTSErrorCounts {
    var counts = MPEGTSErrorCounts()
    counts.continuity = continuity
    counts.syncByte = syncByte
    counts.patMissing = patMissing
    return counts
  }

  // MARK: The byte stream

  /// ffmpeg's default udp:// output: 1,472-byte datagrams, packets straddling them. Read as
  /// cleanly as the same stream in aligned datagrams of seven packets.
  @Test func packetsStraddlingDatagramsReadLikeAlignedOnes() {
    let clean = stream(packets: 700)
    let (straddled, straddledMalformed) = analyze(datagrams(clean, size: 1472))
    #expect(straddledMalformed == 0)
    #expect(straddled.errors == MPEGTSErrorCounts())
    #expect(straddled.packets == 700)
    // With two packets missing from the stream, both readings count the same two errors.
    let broken = stream(packets: 700, skip: [101, 502])
    let (aligned, _) = analyze(datagrams(broken, size: 1316))
    let (cut, malformed) = analyze(datagrams(broken, size: 1472))
    #expect(malformed == 0)
    #expect(aligned.errors == counts(continuity: 2))
    #expect(cut.errors == aligned.errors && cut.packets == aligned.packets)
    // Any datagram size that holds three sync bytes one packet apart.
    for size in [2 * 188 + 1, 500, 1000, 1500, 9000] {
      let (analyzer, malformed) = analyze(datagrams(broken, size: size))
      #expect(malformed == 0, "datagrams of \(size)")
      #expect(analyzer.errors == counts(continuity: 2), "datagrams of \(size)")
      #expect(analyzer.packets == 698, "datagrams of \(size)")
    }
    // Shorter datagrams that are not whole packets never show a lock: malformed, and
    // nothing counted (a lock is searched for within one datagram).
    let (short, shortMalformed) = analyze(datagrams(broken, size: 187))
    #expect(shortMalformed == datagrams(broken, size: 187).count && short.packets == 0)
  }

  /// Bytes before the first sync byte are skipped, a stray sync byte among them too;
  /// garbage inside the stream loses the lock (one sync_byte error) until three sync bytes
  /// lock again.
  @Test func garbageIsSkippedAndTheLockFoundAgain() {
    var bytes = [UInt8](repeating: 0x12, count: 100) + stream(packets: 40)
    bytes[10] = 0x47  // one alone does not lock
    var analyzer = MPEGTSAnalyzer()
    #expect(analyzer.analyze(bytes[...], arrival: epoch) == true)
    #expect(analyzer.packets == 40)
    #expect(analyzer.errors == MPEGTSErrorCounts())
    // 50 garbage bytes between two runs of packets, in the middle of a datagram: one lock
    // lost, the packets after it read; the counters carry on across the garbage.
    let whole = stream(packets: 80)
    let inner = Array(whole[0..<(40 * 188)]) + [UInt8](repeating: 0x99, count: 50) + Array(whole[(40 * 188)...])
    var fresh = MPEGTSAnalyzer()
    #expect(fresh.analyze(inner[...], arrival: epoch) == true)
    #expect(fresh.packets == 80)
    #expect(fresh.errors == counts(syncByte: 1))
  }

  /// One corrupted sync byte between good ones is that packet's error and the lock holds.
  @Test func oneBadSyncByteKeepsTheLock() {
    var bytes = stream(packets: 30)
    bytes[5 * 188] = 0x46
    let (analyzer, malformed) = analyze(datagrams(bytes, size: 1472))
    #expect(malformed == 0)
    #expect(analyzer.packets == 30)
    // The corrupted packet is not checked (its header is not to be trusted), so its PID's
    // next counter skips one: a continuity error too, as with aligned datagrams.
    #expect(analyzer.errors == counts(continuity: 1, syncByte: 1))
  }

  /// Locking needs three sync bytes one packet apart, unless the datagram is whole packets.
  @Test func aLockNeedsThreeSyncBytesInARow() {
    let three = stream(packets: 3)
    // Two packets and a bit, off the datagram framing: only two sync bytes, no lock.
    var analyzer = MPEGTSAnalyzer()
    #expect(analyzer.analyze(three[5..<(2 * 188 + 100)], arrival: epoch) == false)
    #expect(analyzer.analyze(([0x00] + three.prefix(2 * 188))[...], arrival: epoch) == false)
    #expect(analyzer.packets == 0 && analyzer.errors == MPEGTSErrorCounts())
    // Three sync bytes: locked at the first, two whole packets read, the third kept.
    #expect(analyzer.analyze(([0x00] + three.prefix(2 * 188 + 1))[...], arrival: epoch) == true)
    #expect(analyzer.packets == 2)
    // Whole packets with sync bytes at their starts lock by the datagram alone.
    var whole = MPEGTSAnalyzer()
    #expect(whole.analyze(three[0..<188], arrival: epoch) == true)
    #expect(whole.packets == 1)
    // Not when most packet starts lack the sync byte.
    var bytes = stream(packets: 3)
    bytes[188] = 0
    bytes[376] = 0
    var unlocked = MPEGTSAnalyzer()
    #expect(unlocked.analyze(bytes[...], arrival: epoch) == false)
  }

  /// 204-byte packets: 188 of TS and 16 Reed-Solomon bytes, which are not read as a packet.
  @Test func packetsWithReedSolomonBytesAreRecognised() {
    let packets = stream(packets: 200, skip: [77])
    var with204: [UInt8] = []
    for index in stride(from: 0, to: packets.count, by: 188) {
      with204 += packets[index..<(index + 188)] + [UInt8](repeating: 0x47, count: 16)  // parity bytes may hold anything
    }
    for size in [204 * 7, 1472, 1000] {
      let (analyzer, malformed) = analyze(datagrams(with204, size: size))
      #expect(malformed == 0, "datagrams of \(size)")
      #expect(analyzer.packets == 199, "datagrams of \(size)")
      #expect(analyzer.errors == counts(continuity: 1), "datagrams of \(size)")
    }
  }

  /// A datagram lost from a straddled stream: the packet it cut is dropped (its bytes did
  /// not all arrive), the next datagram read from its own sync bytes, and the PID that lost
  /// packets shows one continuity error. No sync_byte error: nothing was corrupt.
  @Test func aLostDatagramIsOneContinuityErrorPerPIDThatLostPackets() {
    // One PID only, so the error count is exactly one per lost datagram.
    let bytes = (0..<300).flatMap { P.ts(pid: 0x100, counter: UInt8($0 & 0x0F)) }
    var cut = datagrams(bytes, size: 1472)
    cut.remove(at: 10)
    let (analyzer, malformed) = analyze(cut)
    #expect(malformed == 0)
    #expect(analyzer.errors == counts(continuity: 1))
    // 1472 bytes lost: 7 whole packets and the two the datagram's edges cut.
    #expect(analyzer.packets == 300 - 9)
  }

  /// After a lost datagram, a payload byte 0x47 where the cut packet's successor would
  /// start is not enough: the sync byte a packet further must be there too.
  @Test func oneStraySyncByteDoesNotSpliceAcrossALoss() {
    let bytes = (0..<100).flatMap { P.ts(pid: 0x100, counter: UInt8($0 & 0x0F)) }
    var chunks = datagrams(bytes, size: 1000)
    // Datagram 2 ends 180 bytes into packet 15; datagram 4 (after the lost 3) holds 0x47
    // in packet 21's payload 8 bytes in, where packet 16 would start.
    var planted = Array(chunks[4])
    planted[8] = 0x47
    chunks[4] = planted[...]
    chunks.remove(at: 3)
    let (analyzer, malformed) = analyze(chunks)
    #expect(malformed == 0)
    #expect(analyzer.errors == counts(continuity: 1))
    #expect(analyzer.packets == 93)  // 15 to 21 lost: cut, whole, cut
  }

  /// ffmpeg flushes short datagrams now and then. After a lost datagram, a short one that
  /// cannot show three sync bytes is read with the packet size known: a sync byte it does
  /// not contradict is a candidate the next datagram confirms; without any, it is a piece
  /// of a packet whose start was lost. Neither is malformed.
  @Test func shortDatagramsAfterALossAreReadWithTheKnownSize() {
    let bytes = (0..<60).flatMap { P.ts(pid: 0x100, counter: UInt8($0 & 0x0F)) }
    // 1472 | lost 1472 | 120 (inside packet 15: no sync byte) | 100 (packet 16's first bytes)
    // | the rest. Packet 16 starts at 3008 = 2944 + 64: the 100-byte datagram from 3008 on.
    let chunks = [bytes[0..<1472], bytes[2944..<3008], bytes[3008..<3108]] + datagrams(Array(bytes[3108...]), size: 1472)
    var planted = Array(chunks[1])
    planted[10] = 0x47  // a payload byte that looks like a sync byte, alone in its datagram
    let fed = [chunks[0], planted[...]] + chunks[2...]
    let (analyzer, malformed) = analyze(fed)
    #expect(malformed == 0)
    // Packets 7 to 15 lost (7 cut by the loss, 15 missing its start), 16 read whole.
    #expect(analyzer.packets == 60 - 9)
    #expect(analyzer.errors == counts(continuity: 1))
    // After a datagram that ended on a packet boundary and a lost one, 32 bytes without a
    // sync byte (ffmpeg's short flush, the end of a packet): a fragment, not malformed.
    var fragment = MPEGTSAnalyzer()
    #expect(fragment.analyze(bytes[0..<1316], arrival: epoch) == true)
    #expect(fragment.analyze(bytes[(1316 + 1472)..<(1316 + 1472 + 32)], arrival: epoch + 10 * ms) == true)
    #expect(fragment.analyze(bytes[(1316 + 1472 + 32)..<(1316 + 1472 + 32 + 1128)], arrival: epoch + 20 * ms) == true)
    #expect(fragment.errors == counts(continuity: 1) && fragment.packets == 7 + 6)
    // A packet's worth of bytes without a sync byte is not the stream.
    var locked = analyzer
    #expect(locked.analyze([UInt8](repeating: 0, count: 188)[...], arrival: epoch + 10_000 * ms, follows: false) == false)
  }

  /// A lost datagram whose length is whole packets leaves the next one continuing at the
  /// right offset, so the bytes alone would splice the cut packet's head to another's tail.
  /// Inside RTP the sequence gap says the datagram does not follow: the cut packet is dropped.
  @Test func anRTPGapDropsTheCutPacket() throws {
    let bytes = (0..<100).flatMap { P.ts(pid: 0x100, counter: UInt8($0 & 0x0F)) }
    // 1000 bytes (packet 5 cut after 60), 1128 = 6 × 188 lost, then the rest.
    let chunks = [bytes[0..<1000], bytes[1000..<2128]] + datagrams(Array(bytes[2128...]), size: 1000)
    var spliced = MPEGTSAnalyzer()
    var told = MPEGTSAnalyzer()
    for (index, chunk) in chunks.enumerated() where index != 1 {
      #expect(spliced.analyze(chunk, arrival: epoch + Int64(index) * 10 * ms) == true)
      #expect(told.analyze(chunk, arrival: epoch + Int64(index) * 10 * ms, follows: index != 2) == true)
    }
    // Packets 5 to 11 lost; spliced, packet 5's head passes for the whole packet.
    #expect(told.packets == 93 && spliced.packets == 94)
    #expect(told.errors == counts(continuity: 1) && spliced.errors == counts(continuity: 1))
    // The same through RTP: the gap in its sequence is what says so.
    var analyzer = PayloadAnalyzer(format: .mpegts)
    for (index, chunk) in chunks.enumerated() where index != 1 {
      let datagram = P.rtp(sequence: UInt16(index), timestamp: UInt32(index) * 900, payload: Array(chunk))
      #expect(analyzer.analyze(datagram[...], arrival: epoch + Int64(index) * 10 * ms) == .accepted(oneWayDelay: nil))
    }
    #expect(try #require(analyzer.snapshot.mpegtsErrors) == counts(continuity: 1))
    // The hole is one of the last 64 numbers: pending until the stream is declared silent.
    #expect(analyzer.snapshot.lost == 0)
    analyzer.settle()
    #expect(analyzer.snapshot.lost == 1 && analyzer.snapshot.received == UInt64(chunks.count - 1))
  }

  // MARK: Discontinuities

  /// An encoder restart after silence: counters and PAT clock start again, one
  /// discontinuity, no continuity error, no pat_missing.
  @Test func silenceLongerThanTheRestartGapIsADiscontinuity() {
    var analyzer = MPEGTSAnalyzer()
    let first = stream(packets: 70)
    for (index, datagram) in datagrams(first, size: 1316).enumerated() {
      analyzer.analyze(datagram, arrival: epoch + Int64(index) * 40 * ms)
    }
    // The encoder restarts 700 ms later, counters from 0 again and in a new alignment.
    let restartedAt = epoch + 10 * 40 * ms + 700 * ms
    let second = [UInt8](repeating: 0x55, count: 33) + stream(packets: 70)
    for (index, datagram) in datagrams(second, size: 1472).enumerated() {
      analyzer.analyze(datagram, arrival: restartedAt + Int64(index) * 40 * ms)
    }
    #expect(analyzer.errors == MPEGTSErrorCounts())
    #expect(analyzer.discontinuities.silence == 1 && analyzer.discontinuities.total == 1)
    // Within the gap the same jump is a continuity error per PID (and, the PAT being older
    // than 0.5 s, one pat_missing), as TR 101 290 counts a real loss.
    var patient = MPEGTSAnalyzer(restartGapNanoseconds: 2_000 * ms)
    for (index, datagram) in datagrams(first, size: 1316).enumerated() {
      patient.analyze(datagram, arrival: epoch + Int64(index) * 40 * ms)
    }
    for (index, datagram) in datagrams(stream(packets: 70), size: 1316).enumerated() {
      patient.analyze(datagram, arrival: restartedAt + Int64(index) * 40 * ms)
    }
    #expect(patient.discontinuities.total == 0)
    #expect(patient.errors.continuity == 3 && patient.errors.patMissing == 1)
  }

  /// pat_missing waits for the stream to be up its interval, after a restart as at the start.
  @Test func patTimingStartsAgainAtARestart() {
    var analyzer = MPEGTSAnalyzer()
    analyzer.analyze(P.pat(counter: 0)[...], arrival: epoch)
    // 2 s of silence, then packets without a PAT: none missing for the first 0.5 s.
    analyzer.analyze(P.ts(pid: 0x44, counter: 9)[...], arrival: epoch + 2_000 * ms)
    analyzer.analyze(P.ts(pid: 0x44, counter: 10)[...], arrival: epoch + 2_400 * ms)
    #expect(analyzer.errors == MPEGTSErrorCounts())
    analyzer.analyze(P.ts(pid: 0x44, counter: 11)[...], arrival: epoch + 2_501 * ms)
    #expect(analyzer.errors == counts(patMissing: 1))
    #expect(analyzer.discontinuities.silence == 1)
  }

  /// A new SSRC is a restart: one discontinuity (and RTP's reset), no continuity error. With
  /// silence before it, it counts once, as silence.
  @Test func aNewSSRCIsADiscontinuityCountedOnce() throws {
    var analyzer = PayloadAnalyzer(format: .mpegts)
    var arrival = epoch
    /// Datagram `n` of a sender: a PAT and six packets of PID 0x100, counters following on.
    func send(ssrc: UInt32, sequence: UInt16, n: Int, after gap: Int64 = 20 * ms) {
      arrival += gap
      let payload = P.pat(counter: UInt8(n & 0x0F)) + P.run(pid: 0x100, from: UInt8(n * 6 & 0x0F), count: 6)
      let datagram = P.rtp(sequence: sequence, timestamp: UInt32(sequence) * 1800, ssrc: ssrc, payload: payload)
      #expect(analyzer.analyze(datagram[...], arrival: arrival) == .accepted(oneWayDelay: nil))
    }
    for n in 0..<10 { send(ssrc: 0xA, sequence: 100 + UInt16(n), n: n) }
    // The restarted encoder: a new SSRC and sequence, its counters from elsewhere.
    for n in 0..<10 { send(ssrc: 0xB, sequence: 5000 + UInt16(n), n: n + 7) }
    var snapshot = analyzer.snapshot
    #expect(try #require(snapshot.mpegtsErrors) == MPEGTSErrorCounts())
    var expected = MPEGTSDiscontinuityCounts()
    expected.ssrcChange = 1
    #expect(snapshot.mpegtsDiscontinuities == expected)
    #expect(snapshot.resets == 1 && snapshot.lost == 0)
    // Silence and a new SSRC at once: one restart, counted as silence.
    for n in 0..<10 { send(ssrc: 0xC, sequence: 9000 + UInt16(n), n: n + 3, after: n == 0 ? 900 * ms : 20 * ms) }
    snapshot = analyzer.snapshot
    expected.silence = 1
    #expect(snapshot.mpegtsDiscontinuities == expected)
    #expect(try #require(snapshot.mpegtsErrors) == MPEGTSErrorCounts())
  }

  /// discontinuity_indicator on a followed PID counts one discontinuity per flagged packet;
  /// on a PID's first packet there is nothing to be discontinuous with.
  @Test func theDiscontinuityIndicatorCountsOnFollowedPIDs() {
    let packets = [
      P.ts(pid: 0x44, counter: 3, adaptation: 1, discontinuity: true),
      P.ts(pid: 0x44, counter: 4),
      P.ts(pid: 0x44, counter: 12, adaptation: 1, discontinuity: true),
      P.ts(pid: 0x44, counter: 13),
      P.ts(pid: 0x44, counter: 13, payload: false, adaptation: 183, discontinuity: true),
      P.ts(pid: 0x44, counter: 2),
    ]
    var analyzer = MPEGTSAnalyzer()
    for (index, packet) in packets.enumerated() { analyzer.analyze(packet[...], arrival: epoch + Int64(index) * ms) }
    #expect(analyzer.errors == MPEGTSErrorCounts())
    #expect(analyzer.discontinuities.indicator == 2 && analyzer.discontinuities.total == 2)
  }

  @Test func reasonsHaveTheirLabelValues() {
    #expect(MPEGTSDiscontinuityReason.allCases.map(\.rawValue) == ["silence", "ssrc_change", "indicator"])
  }
}
