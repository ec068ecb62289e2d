import Testing
@testable import NetProbe

@Suite struct ICMPPacketTests {
  let nonce: UInt64 = 0x0123_4567_89AB_CDEF

  /// A reply as a host would send it: our request's payload echoed back.
  func reply(
    family: IPAddress.Family = .ip4, identifier: UInt16 = 0x4242, sequence: UInt32 = 7, nonce: UInt64? = nil,
    slot: UInt32 = 3, payloadSize: Int = 56, mutate: (inout [UInt8]) -> Void = { _ in }
  ) -> [UInt8] {
    var payload = ProbePayload.padding(count: payloadSize)
    ProbePayload(nonce: nonce ?? self.nonce, slot: slot, sequence: sequence, sendTimeNanoseconds: 1_700_000_000_000_000_000)
      .write(into: &payload)
    let type = family == .ip4 ? ICMPType.echoReplyV4 : ICMPType.echoReplyV6
    var bytes = ICMPEcho(type: type, identifier: identifier, sequence: UInt16(truncatingIfNeeded: sequence), payload: payload)
      .encoded(family: family)
    mutate(&bytes)
    return bytes
  }

  @Test func checksumMatchesRFC1071Example() {
    // RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement.
    #expect(InternetChecksum.compute([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]) == ~UInt16(0xDDF2))
    #expect(InternetChecksum.compute([0xFF]) == 0x00FF)
    let request = ICMPEcho(type: 8, identifier: 1, sequence: 2, payload: [1, 2, 3]).encoded(family: .ip4)
    #expect(InternetChecksum.isValid(request))
  }

  @Test func payloadRoundTrips() throws {
    var bytes = ProbePayload.padding(count: 40)
    let payload = ProbePayload(nonce: nonce, slot: 0xFFFF_FFFF, sequence: 0x8000_0001, sendTimeNanoseconds: -5)
    payload.write(into: &bytes)
    #expect(ProbePayload.decode(bytes) == payload)
    #expect(ProbePayload.decode(bytes.prefix(23)) == nil)
    #expect(ProbePayload.hasIntactPadding(bytes[...]))
    bytes[30] ^= 1
    #expect(!ProbePayload.hasIntactPadding(bytes[...]))
  }

  @Test func matchesOurReplyOnRawAndDatagramSockets() {
    for kind in [ICMPSocketKind.raw, .dgram] {
      let matcher = ReplyMatcher(family: .ip4, kind: kind, nonce: nonce)
      // Datagram sockets: the kernel rewrote the identifier; it must not matter.
      let identifier: UInt16 = kind == .raw ? 0x4242 : 0x9999
      guard
        case .candidate(let payload, let sequence, let length) = matcher.match(
          reply(identifier: identifier)[...], identifiers: (0x4242, 0x4242))
      else {
        Issue.record("\(kind): our reply not matched")
        continue
      }
      #expect(payload.slot == 3 && payload.sequence == 7 && sequence == 7 && length == 56)
    }
  }

  @Test func refusesForgedForeignAndCorruptReplies() {
    let raw = ReplyMatcher(family: .ip4, kind: .raw, nonce: nonce)
    let ids: (UInt16, UInt16) = (0x4242, 0x1111)
    #expect(raw.match(reply(nonce: 42)[...], identifiers: ids) == .unexpected(.badNonce))
    #expect(raw.match(reply(identifier: 0x0001)[...], identifiers: ids) == .unexpected(.foreign))
    #expect(raw.match(reply(identifier: 0x1111)[...], identifiers: ids) != .unexpected(.foreign), "the previous identifier stays valid")
    let shortPayload = ICMPEcho(type: 0, identifier: 0x4242, sequence: 7, payload: Array(repeating: 0x41, count: 10)).encoded(family: .ip4)
    #expect(raw.match(shortPayload[...], identifiers: ids) == .unexpected(.foreign), "another program's ping with our identifier")
    #expect(raw.match(reply { $0[40] ^= 0xFF }[...], identifiers: ids) == .unexpected(.malformed), "bad checksum")
    let corrupted = reply { bytes in
      bytes[40] ^= 0xFF
      bytes[2] = 0
      bytes[3] = 0
      let checksum = InternetChecksum.compute(bytes)
      bytes[2] = UInt8(checksum >> 8)
      bytes[3] = UInt8(checksum & 0xFF)
    }
    #expect(raw.match(corrupted[...], identifiers: ids) == .unexpected(.corrupt))
    let wrongSequence = ICMPEcho(type: 0, identifier: 0x4242, sequence: 99, payload: Array(reply().dropFirst(8))).encoded(family: .ip4)
    #expect(raw.match(wrongSequence[...], identifiers: ids) == .unexpected(.corrupt))
    #expect(raw.match([0, 0, 0][...], identifiers: ids) == .unexpected(.malformed))
    #expect(raw.match(reply { $0[0] = 11 }[...], identifiers: ids) == .ignored)
    #expect(raw.match(reply { $0[0] = 8 }[...], identifiers: ids) == .ignored, "our own request seen on loopback")
  }

  @Test func ipv6RepliesNeedNoChecksumFromUs() {
    let matcher = ReplyMatcher(family: .ip6, kind: .raw, nonce: nonce)
    guard case .candidate = matcher.match(reply(family: .ip6)[...], identifiers: (0x4242, 0x4242)) else {
      Issue.record("IPv6 reply not matched")
      return
    }
    #expect(matcher.match(reply(family: .ip4)[...], identifiers: (0x4242, 0x4242)) == .ignored)
  }

  @Test func ipv4HeaderDecodingChecksEverything() {
    var header: [UInt8] = [0x45, 0, 0, 84, 0, 0, 0x40, 0, 57, 1, 0, 0, 198, 18, 0, 1, 198, 18, 1, 2]
    let decoded = IPv4Header.decode(header[...])
    #expect(decoded?.ttl == 57 && decoded?.protocolNumber == 1 && decoded?.headerLength == 20)
    #expect(decoded?.source == IPAddress("198.18.0.1") && decoded?.destination == IPAddress("198.18.1.2"))
    #expect(IPv4Header.decode(header.prefix(19)) == nil)
    header[0] = 0x46  // IHL 6 (24 bytes) but only 20 there
    #expect(IPv4Header.decode(header[...]) == nil)
    header[0] = 0x65  // version 6
    #expect(IPv4Header.decode(header[...]) == nil)
    header[0] = 0x44  // IHL 4 < 5
    #expect(IPv4Header.decode(header[...]) == nil)
  }

  @Test func survivesRandomBytes() {
    var generator = SystemRandomNumberGenerator()
    let matchers = [ReplyMatcher(family: .ip4, kind: .raw, nonce: nonce), ReplyMatcher(family: .ip6, kind: .dgram, nonce: nonce)]
    for _ in 0..<20_000 {
      let bytes = (0..<Int.random(in: 0...80, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
      for matcher in matchers { _ = matcher.match(bytes[...], identifiers: (1, 2)) }
      _ = IPv4Header.decode(bytes[...])
      _ = ProbePayload.decode(bytes)
    }
  }
}
