import Foundation
import Testing
@testable import NetProbe

@Suite struct BeaconPayloadTests {
  let beacon = BeaconPayload(
    streamID: 0x0102_0304, senderID: 0x0A0B_0C0D, sequence: 0x1122_3344_5566_7788,
    sendTimeNanoseconds: -2)

  /// `struct.pack(">4sB3xIIQq", b"NPBC", 1, 0x01020304, 0x0A0B0C0D, 0x1122334455667788, -2)`,
  /// what the lab's Python sender writes.
  let pythonBytes: [UInt8] = [
    0x4E, 0x50, 0x42, 0x43, 0x01, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C, 0x0D,
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
  ]

  @Test func encodesThePythonLayout() {
    #expect(beacon.encoded() == pythonBytes)
    #expect(beacon.encoded(size: 40) == pythonBytes + [UInt8](repeating: 0, count: 8))
  }

  @Test func decodesWithAnyPaddingAndFromASlice() {
    #expect(BeaconPayload(parsing: pythonBytes) == beacon)
    var padded = pythonBytes + [0xAB, 0xCD, 0xEF]
    // Reserved bytes are for later versions: ignored, not rejected.
    padded[6] = 0x55
    #expect(BeaconPayload(parsing: MulticastTestPackets.embedded(padded, offset: 13)) == beacon)
  }

  @Test func encodingReusesTheBufferAndZeroesThePadding() {
    var buffer = [UInt8](repeating: 0x77, count: 100)
    beacon.encode(into: &buffer, size: 48)
    #expect(buffer.count == 48)
    #expect(Array(buffer.prefix(32)) == pythonBytes)
    #expect(buffer.dropFirst(32).allSatisfy { $0 == 0 })
    let next = BeaconPayload(streamID: 9, senderID: 8, sequence: 7, sendTimeNanoseconds: 1_700_000_000_123_456_789)
    next.encode(into: &buffer, size: 48)
    #expect(BeaconPayload(parsing: buffer) == next)
  }

  @Test func rejectsShortForeignAndNewerPayloads() {
    #expect(BeaconPayload(parsing: pythonBytes.prefix(31)) == nil)
    #expect(BeaconPayload(parsing: [UInt8]()) == nil)
    var magic = pythonBytes
    magic[3] = 0x44  // "NPBD"
    #expect(BeaconPayload(parsing: magic) == nil)
    var version = pythonBytes
    version[4] = 2
    #expect(BeaconPayload(parsing: version) == nil)
    version[4] = 0
    #expect(BeaconPayload(parsing: version) == nil)
  }
}

@Suite struct RTPPacketTests {
  @Test func parsesTheFixedHeader() throws {
    let bytes = MulticastTestPackets.rtp(
      payloadType: 33, sequence: 0x1234, timestamp: 0xDEAD_BEEF, ssrc: 0x0102_0304,
      marker: true, payload: [1, 2, 3, 4])
    let packet = try #require(RTPPacket(parsing: bytes))
    #expect(packet.payloadType == 33 && packet.marker)
    #expect(packet.sequence == 0x1234 && packet.timestamp == 0xDEAD_BEEF && packet.ssrc == 0x0102_0304)
    #expect(!packet.padding && !packet.hasExtension && packet.csrcCount == 0)
    #expect(packet.payloadOffsets == 12..<16)
  }

  @Test func skipsContributingSourcesAndTheExtension() throws {
    // V=2 X=1 CC=2, M=1 PT=96, two CSRCs, extension 0xBEDE with one word, 3 payload bytes.
    var bytes: [UInt8] = [0x92, 0xE0, 0x00, 0x07, 0, 0, 0, 1, 0xCA, 0xFE, 0xBA, 0xBE]
    bytes += [0, 0, 0, 0xA1, 0, 0, 0, 0xA2]
    bytes += [0xBE, 0xDE, 0x00, 0x01, 0x10, 0x20, 0x30, 0x40]
    bytes += [0x61, 0x62, 0x63]
    let slice = MulticastTestPackets.embedded(bytes, offset: 21)
    let packet = try #require(RTPPacket(parsing: slice))
    #expect(packet.hasExtension && packet.csrcCount == 2 && packet.marker && packet.payloadType == 96)
    #expect(packet.sequence == 7 && packet.ssrc == 0xCAFE_BABE)
    #expect(packet.payloadOffsets == 28..<31)
    #expect(Array(packet.payload(of: slice)) == [0x61, 0x62, 0x63])
  }

  @Test func dropsThePadding() throws {
    var bytes = MulticastTestPackets.rtp(sequence: 1, payload: [9, 9, 9, 9, 0, 0, 3])
    bytes[0] |= 0x20
    let packet = try #require(RTPPacket(parsing: bytes))
    #expect(packet.padding && packet.payloadOffsets == 12..<16)
  }

  @Test func rejectsWhatDoesNotFit() {
    let good = MulticastTestPackets.rtp(sequence: 1, payload: [1, 2, 3, 4])
    #expect(RTPPacket(parsing: good) != nil)
    #expect(RTPPacket(parsing: Array(good.prefix(11))) == nil)
    var version1 = good
    version1[0] = 0x40
    #expect(RTPPacket(parsing: version1) == nil)
    var version3 = good
    version3[0] = 0xC0
    #expect(RTPPacket(parsing: version3) == nil)
    var csrcs = good
    csrcs[0] |= 0x02  // two CSRCs: 8 bytes, only 4 there
    #expect(RTPPacket(parsing: csrcs) == nil)
    var extensionHeader = good
    extensionHeader[0] |= 0x10  // 4-byte extension header, length 0x0304 words: far past the end
    extensionHeader[14] = 0x03
    #expect(RTPPacket(parsing: extensionHeader) == nil)
    var shortExtension = MulticastTestPackets.rtp(sequence: 1, payload: [0xBE, 0xDE])
    shortExtension[0] |= 0x10
    #expect(RTPPacket(parsing: shortExtension) == nil)
    var zeroPadding = good
    zeroPadding[0] |= 0x20
    zeroPadding[15] = 0
    #expect(RTPPacket(parsing: zeroPadding) == nil)
    var longPadding = good
    longPadding[0] |= 0x20
    longPadding[15] = 5  // more than the 4 payload bytes
    #expect(RTPPacket(parsing: longPadding) == nil)
  }

  @Test func staticPayloadTypesHaveTheirClockRates() {
    let expected: [UInt8: Int?] = [
      0: 8000, 3: 8000, 8: 8000, 9: 8000, 18: 8000, 6: 16000, 10: 44100, 11: 44100, 16: 11025, 17: 22050,
      14: 90000, 26: 90000, 32: 90000, 33: 90000, 34: 90000, 1: nil, 2: nil, 19: nil, 35: nil, 96: nil, 127: nil,
    ]
    for (type, rate) in expected { #expect(RTPPacket.clockRate(payloadType: type) == rate, "payload type \(type)") }
  }
}

@Suite struct RTPJitterTests {
  /// 20 ms packets at 8 kHz (160 units apart) arriving alternately on time and 10 ms
  /// late: every transit difference is ±80 units, so J = 80 (1 − (15/16)^n) after n.
  @Test func convergesOnAlternatingDelay() throws {
    var jitter = RTPJitter(clockRate: 8000)
    let start: Int64 = 1_700_000_000_000_000_000
    func arrival(_ index: Int) -> Int64 { start + Int64(index) * 20_000_000 + (index % 2 == 1 ? 10_000_000 : 0) }
    jitter.record(arrival: arrival(0), timestamp: 1000)
    #expect(jitter.seconds == nil)
    jitter.record(arrival: arrival(1), timestamp: 1160)
    #expect(jitter.jitter == 5)
    #expect(try #require(jitter.seconds) == 5.0 / 8000)
    jitter.record(arrival: arrival(2), timestamp: 1320)
    #expect(jitter.jitter == 9.6875)  // 5 + (80 − 5) / 16
    for index in 3..<200 { jitter.record(arrival: arrival(index), timestamp: 1000 + UInt32(index) * 160) }
    let closedForm = 80 * (1 - pow(15.0 / 16.0, 199.0))
    #expect(abs(jitter.jitter - closedForm) < 1e-9)
    #expect(abs(try #require(jitter.seconds) - 0.010) < 1e-6)
  }

  @Test func theTimestampWrapIsAStepOfOne() throws {
    var jitter = RTPJitter(clockRate: 90000)
    // 1 ms apart at 90 kHz is 90 units; the timestamps cross 2^32 on the way.
    for index in 0..<50 {
      jitter.record(arrival: Int64(index) * 1_000_000, timestamp: UInt32.max - 1000 &+ UInt32(index) * 90)
    }
    #expect(jitter.samples == 49)
    #expect(jitter.jitter == 0)
  }

  @Test func resetForgetsTheStream() {
    var jitter = RTPJitter(clockRate: 8000)
    jitter.record(arrival: 0, timestamp: 0)
    jitter.record(arrival: 30_000_000, timestamp: 160)
    #expect(jitter.jitter == 5)
    jitter.reset()
    #expect(jitter.seconds == nil && jitter.jitter == 0)
    jitter.record(arrival: 40_000_000, timestamp: 99_999)
    #expect(jitter.seconds == nil)
  }

  /// The beacon's use: 64-bit send times in ns at 1 GHz, arrivals alternately 10 ms late.
  @Test func worksOnNanosecondSendTimes() throws {
    var jitter = RTPJitter(clockRate: 1_000_000_000)
    let sent: Int64 = 1_700_000_000_000_000_000
    jitter.record(arrival: sent + 1_000_000, senderTime: sent)
    jitter.record(arrival: sent + 100_000_000 + 11_000_000, senderTime: sent + 100_000_000)
    #expect(try #require(jitter.seconds) == 0.010 / 16)
    // A wild send time from the network may not trap.
    jitter.record(arrival: sent, senderTime: .min)
    jitter.record(arrival: sent, senderTime: .max)
    #expect(try #require(jitter.seconds).isFinite)
  }
}

@Suite struct SequenceFieldReadingTests {
  let payload = MulticastTestPackets.embedded([0xAA, 0xBB, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08], offset: 5)

  @Test func readsBigAndLittleEndianFields() {
    #expect(SequenceField(offset: 2, width: 2, endianness: .big).value(in: payload) == 0x0102)
    #expect(SequenceField(offset: 2, width: 2, endianness: .little).value(in: payload) == 0x0201)
    #expect(SequenceField(offset: 2, width: 4, endianness: .big).value(in: payload) == 0x0102_0304)
    #expect(SequenceField(offset: 2, width: 4, endianness: .little).value(in: payload) == 0x0403_0201)
    #expect(SequenceField(offset: 2, width: 8, endianness: .big).value(in: payload) == 0x0102_0304_0506_0708)
    #expect(SequenceField(offset: 2, width: 8, endianness: .little).value(in: payload) == 0x0807_0605_0403_0201)
    #expect(SequenceField(offset: 0, width: 2, endianness: .big).value(in: payload) == 0xAABB)
  }

  @Test func aFieldPastTheEndIsNil() {
    #expect(SequenceField(offset: 3, width: 8, endianness: .big).value(in: payload) == nil)
    #expect(SequenceField(offset: 9, width: 2, endianness: .little).value(in: payload) == nil)
    #expect(SequenceField(offset: 8, width: 2, endianness: .little).value(in: payload) == 0x0807)
    #expect(SequenceField(offset: .max, width: 8, endianness: .big).value(in: payload) == nil)
    #expect(SequenceField(offset: 0, width: 2, endianness: .big).value(in: ArraySlice<UInt8>()) == nil)
  }

  @Test func onlyTwoToEightByteFieldsAreTracked() {
    #expect(SequenceField(offset: 0, width: 1, endianness: .big).value(in: payload) == nil)
    #expect(SequenceField(offset: 0, width: 9, endianness: .big).value(in: payload) == nil)
    #expect(SequenceField(offset: -1, width: 2, endianness: .big).value(in: payload) == nil)
    #expect(SequenceField(offset: 0, width: 4, endianness: .big).bits == 32)
  }
}
