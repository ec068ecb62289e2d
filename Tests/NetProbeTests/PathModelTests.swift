import Testing
@testable import NetProbe

@Suite struct PathModelTests {
  let r1 = IPAddress("198.18.1.1")!
  let r2 = IPAddress("198.18.2.1")!
  let r3 = IPAddress("198.18.3.1")!
  let destination = IPAddress("198.19.0.1")!

  func path(_ hops: [[IPAddress]], reached: Bool = true) -> PathIdentity {
    PathIdentity(hops: hops.map(Set.init), complete: reached)
  }

  @Test func identityTextAndHash() {
    let a = path([[r1], [], [destination]])
    #expect(a.text == "198.18.1.1|*|198.19.0.1")
    #expect(a.hash == path([[r1], [], [destination]]).hash)
    #expect(a.hash != path([[r2], [], [destination]]).hash)
    #expect(path([[r2, r1]]).text == "198.18.1.1,198.18.2.1")
  }

  @Test func silentHopsNeverConflict() {
    #expect(!path([[r1], [destination]]).conflicts(with: path([[], [destination]])))
    #expect(!path([[r1], [r3], [destination]]).conflicts(with: path([[r1], []], reached: false)))
    #expect(path([[r1], [destination]]).conflicts(with: path([[r2], [destination]])))
    #expect(path([[r1], [destination]]).conflicts(with: path([[r1], [r3], [destination]])), "a longer path")
    #expect(!path([[r1, r2], [destination]]).conflicts(with: path([[r2], [destination]])), "an ECMP branch already seen")
  }

  @Test func aChangeNeedsConsecutiveConfirmingRounds() {
    var detector = PathChangeDetector(confirmRounds: 2)
    let viaR1 = path([[r1], [destination]])
    let viaR2 = path([[r2], [destination]])
    let changed1 = detector.observe(viaR1)
    #expect(!changed1)
    #expect(detector.confirmed == viaR1)
    let changed2 = detector.observe(viaR2)  // one round: a candidate only
    #expect(!changed2)
    let changed3 = detector.observe(viaR1)  // back: the candidate is forgotten
    #expect(!changed3)
    let changed4 = detector.observe(viaR2)
    #expect(!changed4)
    let changed5 = detector.observe(viaR2)  // two in a row: confirmed
    #expect(changed5)
    #expect(detector.changes == 1 && detector.confirmed == viaR2)
    let changed6 = detector.observe(viaR2)
    #expect(!changed6)
    #expect(detector.changes == 1)
  }

  @Test func rateLimitedHopsAreNoChangeOverManyRounds() {
    var detector = PathChangeDetector(confirmRounds: 2)
    let full = path([[r1], [r3], [destination]])
    _ = detector.observe(full)
    for round in 0..<50 {
      let hops: [[IPAddress]] = [round % 2 == 0 ? [] : [r1], round % 3 == 0 ? [] : [r3], [destination]]
      let changed7 = detector.observe(path(hops))
      #expect(!changed7)
    }
    #expect(detector.changes == 0)
    #expect(detector.confirmed == full)
    let changed8 = detector.observe(path([[], [], []], reached: false))
    #expect(!changed8, "a round with no answer at all says nothing")
  }

  @Test func ecmpRespondersAccumulate() {
    var detector = PathChangeDetector(confirmRounds: 2)
    _ = detector.observe(path([[r1], [r3], [destination]]))
    _ = detector.observe(path([[r1], [r2], [destination]]))  // conflicts at hop 2: candidate
    _ = detector.observe(path([[r1], [r3, r2], [destination]]))  // seen both: compatible with the confirmed
    #expect(detector.changes == 0)
    #expect(detector.confirmed?.hops[1] == [r2, r3])
  }

  @Test func traceRoundKeepsHopsUpToTheDestination() {
    var round = TraceRound(maxHops: 5)
    round.hops[0].record(r1, rtt: 0.001)
    round.hops[0].record(r1, rtt: 0.002)
    round.hops[2].record(destination, rtt: 0.003)
    round.destinationTTL = 3
    #expect(round.identity == path([[r1], [], [destination]]))
    #expect(round.hops[0].replies == 2)
    var unfinished = TraceRound(maxHops: 5)
    unfinished.hops[1].record(r3, rtt: 0.002)
    #expect(unfinished.identity == path([[], [r3]], reached: false))
  }

  @Test func hopHistoryAveragesTheLastRounds() {
    var history = HopHistory(capacity: 2)
    #expect(history.lossRatio == nil && history.meanRTT == nil)
    history.record(sent: 3, rtts: [])
    history.record(sent: 3, rtts: [0.001, 0.003])
    #expect(history.lossRatio == 4.0 / 6.0)
    #expect(history.meanRTT == 0.002)
    history.record(sent: 3, rtts: [0.002, 0.002, 0.002])
    #expect(history.lossRatio == 1.0 / 6.0)
  }

  @Test func flowChecksumStaysConstantWhateverTheSequence() {
    var checksums = Set<UInt16>()
    for sequence in [UInt32(0), 1, 77, 65_535, 1_000_000] {
      var packet = ICMPEcho(
        type: 8, identifier: 0x1234, sequence: UInt16(truncatingIfNeeded: sequence),
        payload: ProbePayload.padding(count: 40)
      ).encoded(family: .ip6)
      ProbePayload(nonce: 42, slot: 7, sequence: sequence, sendTimeNanoseconds: Int64(sequence) * 977).write(into: &packet, at: 8)
      FlowChecksum.compensate(&packet, at: 32, flow: 0xBEEF)
      checksums.insert(InternetChecksum.compute(packet))
    }
    #expect(checksums == [~UInt16(0xBEEF)])
  }
}

@Suite struct ICMPErrorTests {
  /// A Time Exceeded (or other error) as a router sends it: its ICMP header, our request's
  /// IPv4 header and the start of our echo request.
  func ipv4Error(type: UInt8, code: UInt8, unused: [UInt8] = [0, 0, 0, 0], quoteBytes: Int = 64, innerProtocol: UInt8 = 1) -> [UInt8] {
    let request = ICMPEcho(type: 8, identifier: 0x4242, sequence: 9, payload: ProbePayload.padding(count: 56)).encoded(family: .ip4)
    let inner: [UInt8] = [0x45, 0, 0, 84, 0, 0, 0x40, 0, 1, innerProtocol, 0, 0, 198, 18, 1, 2, 198, 19, 0, 1]
    return [type, code, 0, 0] + unused + Array((inner + request).prefix(quoteBytes))
  }

  @Test func decodesTimeExceededWithTheQuotedRequest() throws {
    let error = try #require(ICMPError.decode(ipv4Error(type: 11, code: 0)[...], family: .ip4))
    #expect(error.kind == .timeExceeded)
    #expect(error.quotedDestination == IPAddress("198.19.0.1"))
    #expect(error.quotedEcho.identifier == 0x4242 && error.quotedEcho.sequence == 9)
  }

  @Test func decodesUnreachableAndFragmentationNeeded() {
    #expect(ICMPError.decode(ipv4Error(type: 3, code: 1)[...], family: .ip4)?.kind == .unreachable(code: 1))
    #expect(ICMPError.decode(ipv4Error(type: 3, code: 4, unused: [0, 0, 0x05, 0xDC])[...], family: .ip4)?.kind == .mtuExceeded(mtu: 1500))
  }

  @Test func refusesShortForeignAndOtherProtocolQuotes() {
    #expect(ICMPError.decode(ipv4Error(type: 11, code: 0, quoteBytes: 27)[...], family: .ip4) == nil, "fewer than 8 bytes of the echo")
    #expect(ICMPError.decode(ipv4Error(type: 11, code: 0, innerProtocol: 17)[...], family: .ip4) == nil, "about UDP")
    #expect(ICMPError.decode(ipv4Error(type: 11, code: 1)[...], family: .ip4) == nil, "reassembly timeout")
    #expect(ICMPError.decode(ipv4Error(type: 0, code: 0)[...], family: .ip4) == nil)
    #expect(ICMPError.decode([11, 0, 0][...], family: .ip4) == nil)
  }

  @Test func decodesIPv6PacketTooBigAndTimeExceeded() throws {
    let request = ICMPEcho(type: 128, identifier: 1, sequence: 2, payload: [1, 2, 3, 4]).encoded(family: .ip6)
    var inner = [UInt8](repeating: 0, count: 40)
    inner[0] = 0x60
    inner[6] = 58
    inner[24] = 0x20
    inner[25] = 0x01
    let tooBig: [UInt8] = [2, 0, 0, 0, 0, 0, 0x05, 0x00] + inner + request
    #expect(ICMPError.decode(tooBig[...], family: .ip6)?.kind == .mtuExceeded(mtu: 1280))
    let exceeded: [UInt8] = [3, 0, 0, 0, 0, 0, 0, 0] + inner + request
    let error = try #require(ICMPError.decode(exceeded[...], family: .ip6))
    #expect(error.quotedDestination == IPAddress("2001::") && error.quotedEcho.sequence == 2)
    var otherProtocol = exceeded
    otherProtocol[8 + 6] = 17
    #expect(ICMPError.decode(otherProtocol[...], family: .ip6) == nil)
  }

  /// `struct sock_extended_err` as this host's kernel writes it (host byte order), then the
  /// offender's sockaddr (its family in host order, the address in network order).
  func extendedError(origin: UInt8, type: UInt8, code: UInt8, info: UInt32, offender: [UInt8]) -> [UInt8] {
    var record = withUnsafeBytes(of: UInt32(113)) { Array($0) } + [origin, type, code, 0]
    record += withUnsafeBytes(of: info) { Array($0) } + [0, 0, 0, 0]
    return record + offender
  }

  func sockaddrIn(_ address: [UInt8]) -> [UInt8] {
    withUnsafeBytes(of: UInt16(2)) { Array($0) } + [0, 0] + address + [UInt8](repeating: 0, count: 8)
  }

  func sockaddrIn6(_ address: [UInt8]) -> [UInt8] {
    withUnsafeBytes(of: UInt16(10)) { Array($0) } + [0, 0, 0, 0, 0, 0] + address + [0, 0, 0, 0]
  }

  @Test func decodesTheErrorQueueRecord() throws {
    let record = extendedError(origin: 2, type: 11, code: 0, info: 1500, offender: sockaddrIn([198, 18, 1, 1]))
    let error = try #require(ExtendedError.decode(record))
    #expect(error.origin == 2 && error.type == 11 && error.code == 0 && error.info == 1500)
    #expect(error.offender == IPAddress("198.18.1.1"))
    #expect(ExtendedError.decode(Array(record.prefix(15))) == nil)
    #expect(ExtendedError.decode(Array(record.prefix(16)))?.offender == nil, "no offender address")
    #expect(ExtendedError.decode(Array(record.prefix(23)))?.offender == nil, "a truncated sockaddr_in")
    var unknownFamily = record
    unknownFamily[16] = 99
    unknownFamily[17] = 0
    #expect(ExtendedError.decode(unknownFamily)?.offender == nil)
  }

  @Test func decodesAnIPv6OffenderAndItsMTU() throws {
    let router = IPAddress("2001:db8:1::1")!
    guard case .v6(let bytes, _) = router else {
      Issue.record("not IPv6")
      return
    }
    let record = extendedError(origin: 3, type: 2, code: 0, info: 1280, offender: sockaddrIn6(bytes.array))
    let error = try #require(ExtendedError.decode(record))
    #expect(error.origin == 3 && error.type == 2 && error.info == 1280)
    #expect(error.offender == router)
    #expect(ExtendedError.decode(Array(record.prefix(39)))?.offender == nil, "a truncated sockaddr_in6")
  }

  /// An ICMPv6 error about our echo request to 2001:db8:99::1: its header, the quoted IPv6
  /// header and the request.
  func ipv6Error(type: UInt8, code: UInt8, word: [UInt8] = [0, 0, 0, 0]) -> [UInt8] {
    let request = ICMPEcho(type: 128, identifier: 0x4242, sequence: 7, payload: ProbePayload.padding(count: 32)).encoded(family: .ip6)
    var inner = [UInt8](repeating: 0, count: 40)
    inner[0] = 0x60
    inner[6] = 58
    guard case .v6(let destination, _) = IPAddress("2001:db8:99::1")! else { return [] }
    inner.replaceSubrange(24..<40, with: destination.array)
    return [type, code, 0, 0] + word + inner + request
  }

  @Test func decodesIPv6DestinationUnreachableWithItsCode() throws {
    for code in [UInt8(0), 1, 3, 4] {
      let error = try #require(ICMPError.decode(ipv6Error(type: 1, code: code)[...], family: .ip6))
      #expect(error.kind == .unreachable(code: code))
      #expect(error.quotedDestination == IPAddress("2001:db8:99::1"))
      #expect(error.quotedEcho.identifier == 0x4242 && error.quotedEcho.sequence == 7)
    }
    #expect(ICMPError.decode(ipv6Error(type: 1, code: 3)[...], family: .ip4) == nil, "an ICMPv6 type read as ICMPv4")
    var echoReply = ipv6Error(type: 1, code: 3)
    echoReply[48] = 129
    #expect(ICMPError.decode(echoReply[...], family: .ip6) == nil, "quotes a reply, not our request")
    #expect(ICMPError.decode(ipv6Error(type: 1, code: 3).prefix(55)[...], family: .ip6) == nil, "the echo header cut short")
  }

  @Test func aNextHopMTUOfZeroIsUnknown() {
    #expect(ICMPError.decode(ipv4Error(type: 3, code: 4, unused: [0, 0, 0, 0])[...], family: .ip4)?.kind == .mtuExceeded(mtu: nil))
    #expect(ICMPError.decode(ipv6Error(type: 2, code: 0)[...], family: .ip6)?.kind == .mtuExceeded(mtu: nil))
    #expect(ICMPError.decode(ipv6Error(type: 2, code: 0, word: [0, 0, 0x05, 0x00])[...], family: .ip6)?.kind == .mtuExceeded(mtu: 1280))
  }

  @Test func survivesRandomBytes() {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<20_000 {
      let bytes = (0..<Int.random(in: 0...120, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
      _ = ICMPError.decode(bytes[...], family: .ip4)
      _ = ICMPError.decode(bytes[...], family: .ip6)
      _ = ExtendedError.decode(bytes)
    }
  }

  /// Random bytes rarely get past the type check; valid errors with a few bytes changed,
  /// cut short or extended reach every later branch. Whatever decodes must name a request
  /// (an echo request quoted behind an ICMP-carrying header).
  @Test func survivesMutatedErrors() {
    var generator = SystemRandomNumberGenerator()
    let seeds: [([UInt8], IPAddress.Family)] = [
      (ipv4Error(type: 11, code: 0), .ip4), (ipv4Error(type: 3, code: 1), .ip4),
      (ipv4Error(type: 3, code: 4, unused: [0, 0, 0x05, 0xDC]), .ip4), (ipv4Error(type: 11, code: 0, quoteBytes: 28), .ip4),
      (ipv6Error(type: 3, code: 0), .ip6), (ipv6Error(type: 1, code: 4), .ip6), (ipv6Error(type: 2, code: 0, word: [0, 0, 5, 0]), .ip6),
      (extendedError(origin: 2, type: 11, code: 0, info: 1500, offender: sockaddrIn([198, 18, 1, 1])), .ip4),
    ]
    var decoded = 0
    for _ in 0..<20_000 {
      let (seed, family) = seeds.randomElement(using: &generator)!
      var bytes = seed
      for _ in 0..<Int.random(in: 1...4, using: &generator) {
        switch Int.random(in: 0..<4, using: &generator) {
        case 0: bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
        case 1: bytes[Int.random(in: 0..<min(bytes.count, 60), using: &generator)] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
        case 2: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
        default: bytes += (0..<Int.random(in: 1...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
        if bytes.isEmpty { break }
      }
      if let error = ICMPError.decode(bytes[...], family: family) {
        decoded += 1
        #expect(error.quotedEcho.type == (family == .ip4 ? ICMPType.echoRequestV4 : ICMPType.echoRequestV6))
        if case .mtuExceeded(let mtu?) = error.kind { #expect(mtu > 0) }
      }
      _ = ExtendedError.decode(bytes)
    }
    #expect(decoded > 1_000, "the mutations should leave many errors decodable")
  }
}
