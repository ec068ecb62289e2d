import Testing
@testable import NetProbe

/// Bytes from hex text, spaces ignored.
private func hex(_ text: String) -> [UInt8] {
  let digits = Array(text.filter { !$0.isWhitespace })
  return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

private let router = IPAddress("192.168.1.1")!
private let linkLocal = IPAddress("fe80::1")!

private func expectQuery(_ packet: MembershipPacket, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> MembershipQuery? {
  guard case .query(let query) = packet else {
    Issue.record("expected a query, got \(packet)", sourceLocation: sourceLocation)
    return nil
  }
  return query
}

@Suite struct MembershipQueryTests {
  // MARK: IGMP

  @Test func igmpV1GeneralQuery() throws {
    let decoded = try #require(expectQuery(MembershipQuery.decodeIGMPMessage(hex("11 00 ee ff 00 00 00 00")[...], source: router)))
    #expect(decoded.version == 1 && decoded.kind == .general && decoded.querier == router)
    #expect(decoded.maxResponseMilliseconds == nil, "v1 queries carry no max response")
    #expect(decoded.queryIntervalSeconds == nil && decoded.robustness == nil)
  }

  @Test func igmpV2GeneralAndGroupQueries() throws {
    // A Cisco IGMPv2 general query: Max Resp Time 100 (10 s), group 0.
    let general = try #require(expectQuery(MembershipQuery.decodeIGMPMessage(hex("11 64 ee 9b 00 00 00 00")[...], source: router)))
    #expect(general.version == 2 && general.kind == .general && general.maxResponseMilliseconds == 10_000)
    #expect(general.queryIntervalSeconds == nil, "IGMPv2 announces no interval")
    let group = try #require(expectQuery(MembershipQuery.decodeIGMPMessage(hex("11 0a fd f0 ef 01 02 03")[...], source: router)))
    #expect(group.version == 2 && group.kind == .group && group.group == IPAddress("239.1.2.3"))
    #expect(group.maxResponseMilliseconds == 1_000)
  }

  @Test func igmpV3GeneralQueryInsideItsIPHeader() throws {
    // IHL 6 (Router Alert), TTL 1, 192.168.1.1 → 224.0.0.1; QRV 2, QQIC 125, Max Resp Code 100.
    let datagram = hex("46 c0 00 24 00 00 40 00 01 02 42 69 c0 a8 01 01 e0 00 00 01 94 04 00 00 11 64 ec 1e 00 00 00 00 02 7d 00 00")
    let decoded = try #require(expectQuery(MembershipQuery.decodeIGMP(datagram[...])))
    #expect(decoded.version == 3 && decoded.kind == .general && decoded.querier == router)
    #expect(decoded.queryIntervalSeconds == 125 && decoded.robustness == 2 && decoded.maxResponseMilliseconds == 10_000)
    #expect(decoded.ttl == 1 && decoded.routerAlert == true && !decoded.suppressRouterSide)
    #expect(decoded.versionLabel == "3")
  }

  @Test func igmpV3GroupAndSourceQueries() throws {
    let group = try #require(
      expectQuery(MembershipQuery.decodeIGMPMessage(hex("11 0a fb ee ef 01 02 03 02 02 00 00")[...], source: router)))
    #expect(group.kind == .group && group.queryIntervalSeconds == 2 && group.maxResponseMilliseconds == 1_000)
    // S set, QRV 2, QQIC 0x8f (248 s), two sources.
    let bytes = hex("11 0a 5e 0b ef 01 02 03 0a 8f 00 02 c0 a8 0a 01 c0 a8 0a 02")
    let source = try #require(expectQuery(MembershipQuery.decodeIGMPMessage(bytes[...], source: router)))
    #expect(source.kind == .groupSource && source.suppressRouterSide && source.robustness == 2)
    #expect(source.queryIntervalSeconds == 248)
    #expect(source.sources == [IPAddress("192.168.10.1")!, IPAddress("192.168.10.2")!])
    // The same with a source count of 3 (checksum fixed up): the list is shorter than its count.
    let short = hex("11 0a 5e 0a ef 01 02 03 0a 8f 00 03 c0 a8 0a 01 c0 a8 0a 02")
    #expect(MembershipQuery.decodeIGMPMessage(short[...], source: router) == .malformed(.truncated))
    #expect(MembershipQuery.decodeIGMPMessage(bytes.dropLast(1), source: router) == .malformed(.badChecksum))
  }

  @Test func proxyQuerierFromTheZeroAddress() throws {
    // A snooping switch's proxy query: source 0.0.0.0, no Router Alert.
    let datagram = hex("45 c0 00 20 00 00 40 00 01 02 99 1b 00 00 00 00 e0 00 00 01 11 64 ec 99 00 00 00 00 02 02 00 00")
    let decoded = try #require(expectQuery(MembershipQuery.decodeIGMP(datagram[...])))
    #expect(decoded.querier.description == "0.0.0.0" && decoded.version == 3 && decoded.queryIntervalSeconds == 2)
    #expect(decoded.routerAlert == false)
  }

  @Test func reportsAndLeavesAreNotQueriesNorMalformed() {
    #expect(MembershipQuery.decodeIGMPMessage(hex("16 00 f8 fa ef 01 02 03")[...], source: router) == .notQuery(type: 0x16))
    #expect(MembershipQuery.decodeIGMPMessage(hex("17 00 f7 fa ef 01 02 03")[...], source: router) == .notQuery(type: 0x17))
    #expect(
      MembershipQuery.decodeIGMPMessage(hex("22 00 e8 f9 00 00 00 01 04 00 00 00 ef 01 02 03")[...], source: router)
        == .notQuery(type: 0x22))
  }

  @Test func malformedIGMP() {
    let v2 = hex("11 64 ee 9b 00 00 00 00")
    var corrupt = v2
    corrupt[2] ^= 0x01
    #expect(MembershipQuery.decodeIGMPMessage(corrupt[...], source: router) == .malformed(.badChecksum))
    #expect(MembershipQuery.decodeIGMPMessage(v2.prefix(7), source: router) == .malformed(.truncated))
    // 10 bytes: neither v1/v2 (8) nor v3 (12 or more). Checksum valid, layout unknown.
    #expect(MembershipQuery.decodeIGMPMessage(hex("11 64 ee 9b 00 00 00 00 00 00")[...], source: router) == .malformed(.unknownLayout))
    // Group 10.0.0.1 is not multicast (checksum fixed up).
    #expect(MembershipQuery.decodeIGMPMessage(hex("11 64 e4 9a 0a 00 00 01")[...], source: router) == .malformed(.invalidGroup))
    // A v3 general query listing a source (checksum fixed up).
    #expect(
      MembershipQuery.decodeIGMPMessage(hex("11 64 21 74 00 00 00 00 02 7d 00 01 c0 a8 0a 01")[...], source: router)
        == .malformed(.sourcesInGeneralQuery))
    // The IP header: too short, total length beyond the bytes read, another protocol.
    let datagram = hex("46 c0 00 24 00 00 40 00 01 02 42 69 c0 a8 01 01 e0 00 00 01 94 04 00 00 11 64 ec 1e 00 00 00 00 02 7d 00 00")
    #expect(MembershipQuery.decodeIGMP(datagram.prefix(19)) == .malformed(.truncated))
    #expect(MembershipQuery.decodeIGMP(datagram.dropLast(2)) == .malformed(.truncated))
    var udp = datagram
    udp[9] = 17
    #expect(MembershipQuery.decodeIGMP(udp[...]) == .malformed(.unknownLayout))
    // IHL 6 but the IGMP message truncated to 6 bytes by the total length.
    var short = datagram
    short[3] = 30
    #expect(MembershipQuery.decodeIGMP(short[...]) == .malformed(.truncated))
  }

  // MARK: MLD

  @Test func mldV1GeneralAndGroupQueries() throws {
    let general = hex("82 00 00 00 27 10 00 00" + String(repeating: "00", count: 16))
    let decoded = try #require(expectQuery(MembershipQuery.decodeMLD(general[...], source: linkLocal, hopLimit: 1, routerAlert: true)))
    #expect(decoded.querierProtocol == .mld && decoded.version == 1 && decoded.kind == .general)
    #expect(decoded.maxResponseMilliseconds == 10_000 && decoded.queryIntervalSeconds == nil && decoded.querier == linkLocal)
    let group = hex("82 00 00 00 03 e8 00 00 ff 3e 00 00 00 00 00 00 00 00 00 00 80 00 00 01")
    let specific = try #require(expectQuery(MembershipQuery.decodeMLD(group[...], source: linkLocal)))
    #expect(specific.kind == .group && specific.group == IPAddress("ff3e::8000:1") && specific.maxResponseMilliseconds == 1_000)
  }

  @Test func mldV2GeneralAndSourceQueries() throws {
    let general = hex("82 00 00 00 27 10 00 00" + String(repeating: "00", count: 16) + "02 7d 00 00")
    let decoded = try #require(expectQuery(MembershipQuery.decodeMLD(general[...], source: linkLocal, hopLimit: 1, routerAlert: true)))
    #expect(decoded.version == 2 && decoded.kind == .general && decoded.robustness == 2 && decoded.queryIntervalSeconds == 125)
    #expect(decoded.maxResponseMilliseconds == 10_000)
    // Max Response Code 0x8400 (floating point: 40960 ms), QRV 0, QQIC 0x80 (128 s), one source.
    let source = hex(
      "82 00 00 00 84 00 00 00 ff 3e 00 00 00 00 00 00 00 00 00 00 80 00 00 01 08 80 00 01"
        + "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02")
    let specific = try #require(expectQuery(MembershipQuery.decodeMLD(source[...], source: linkLocal)))
    #expect(specific.kind == .groupSource && specific.sources == [IPAddress("2001:db8::2")!])
    #expect(specific.maxResponseMilliseconds == 40_960 && specific.robustness == nil && specific.queryIntervalSeconds == 128)
    #expect(specific.suppressRouterSide)
    #expect(MembershipQuery.decodeMLD(source.dropLast(1), source: linkLocal) == .malformed(.truncated))
  }

  @Test func malformedMLD() {
    let general = hex("82 00 00 00 27 10 00 00" + String(repeating: "00", count: 16) + "02 7d 00 00")
    #expect(MembershipQuery.decodeMLD(general.prefix(23), source: linkLocal) == .malformed(.truncated))
    #expect(MembershipQuery.decodeMLD(general.prefix(26), source: linkLocal) == .malformed(.unknownLayout))
    #expect(
      MembershipQuery.decodeMLD(general[...], source: IPAddress("2001:db8::1")!) == .malformed(.invalidMLDEnvelope),
      "RFC 3810 6.2: a query from a global address is dropped by hosts")
    #expect(MembershipQuery.decodeMLD(general[...], source: IPAddress("::")!) == .malformed(.invalidMLDEnvelope))
    #expect(MembershipQuery.decodeMLD(general[...], source: linkLocal, hopLimit: 2) == .malformed(.invalidMLDEnvelope))
    #expect(MembershipQuery.decodeMLD(general[...], source: linkLocal, routerAlert: false) == .malformed(.invalidMLDEnvelope))
    var unicastGroup = general
    unicastGroup[8] = 0x20
    #expect(MembershipQuery.decodeMLD(unicastGroup[...], source: linkLocal) == .malformed(.invalidGroup))
    var listed = general
    listed[27] = 1
    listed += [UInt8](repeating: 0x20, count: 16)
    #expect(MembershipQuery.decodeMLD(listed[...], source: linkLocal) == .malformed(.sourcesInGeneralQuery))
    #expect(MembershipQuery.decodeMLD(hex("83 00 00 00 00 00 00 00")[...], source: linkLocal) == .notQuery(type: 131))
  }

  // MARK: Codes and options

  @Test func floatingPointCodes() {
    #expect(MembershipQuery.expandCode8(0) == 0)
    #expect(MembershipQuery.expandCode8(125) == 125)
    #expect(MembershipQuery.expandCode8(127) == 127)
    #expect(MembershipQuery.expandCode8(0x80) == 128)  // (0 | 0x10) << 3
    #expect(MembershipQuery.expandCode8(0x8F) == 248)  // (15 | 16) << 3
    #expect(MembershipQuery.expandCode8(0x90) == 256)  // exp 1: 16 << 4
    #expect(MembershipQuery.expandCode8(0xFF) == 31_744)  // 31 << 10: the largest interval
    #expect(MembershipQuery.expandCode16(10_000) == 10_000)
    #expect(MembershipQuery.expandCode16(32_767) == 32_767)
    #expect(MembershipQuery.expandCode16(0x8000) == 32_768)  // 0x1000 << 3
    #expect(MembershipQuery.expandCode16(0x8001) == 32_776)
    #expect(MembershipQuery.expandCode16(0xFFFF) == 8_387_584)  // 0x1FFF << 10
  }

  @Test func routerAlertOptions() {
    #expect(IPv4Options.hasRouterAlert(hex("94 04 00 00")[...]))
    #expect(IPv4Options.hasRouterAlert(hex("01 01 94 04 00 00 00 00")[...]), "after NOPs")
    #expect(!IPv4Options.hasRouterAlert(hex("00 94 04 00")[...]), "after End of Options")
    #expect(!IPv4Options.hasRouterAlert(hex("07 27 00 00")[...]), "a length beyond the options")
    #expect(!IPv4Options.hasRouterAlert([][...]))
    // Hop-by-hop header: next header 58, length 0 (8 bytes), Router Alert 0 (MLD), PadN.
    #expect(HopByHopOptions.routerAlert(hex("3a 00 05 02 00 00 01 00")[...]) == 0)
    #expect(HopByHopOptions.routerAlert(hex("3a 00 00 00 05 02 00 02")[...]) == 2, "after Pad1s")
    #expect(HopByHopOptions.routerAlert(hex("3a 00 01 04 00 00 00 00")[...]) == nil)
    #expect(HopByHopOptions.routerAlert(hex("3a 00 05 09 00 00")[...]) == nil)
  }

  /// Random and mutated bytes never crash a decoder (a short version of the fuzz target).
  @Test func decodersSurviveGarbage() {
    var generator = SystemRandomNumberGenerator()
    let seeds = [
      hex("46 c0 00 24 00 00 40 00 01 02 42 69 c0 a8 01 01 e0 00 00 01 94 04 00 00 11 64 ec 1e 00 00 00 00 02 7d 00 00"),
      hex(
        "82 00 00 00 84 00 00 00 ff 3e 00 00 00 00 00 00 00 00 00 00 80 00 00 01 08 80 00 01"
          + "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02"),
    ]
    for round in 0..<20_000 {
      var bytes = seeds[round % 2]
      for _ in 0..<Int.random(in: 1...4, using: &generator) {
        let index = Int.random(in: 0..<bytes.count, using: &generator)
        bytes[index] = UInt8.random(in: 0...255, using: &generator)
      }
      bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
      _ = MembershipQuery.decodeIGMP(bytes[...])
      _ = MembershipQuery.decodeMLD(bytes[...], source: linkLocal)
      _ = HopByHopOptions.routerAlert(bytes[...])
      _ = IPv4Options.hasRouterAlert(bytes[...])
    }
  }
}

@Suite struct QuerierStateTests {
  let second: Int64 = 1_000_000_000

  func igmp(
    version: Int, group: String = "0.0.0.0", interval: Int? = nil, robustness: Int? = nil,
    maxResponse: Int? = 10_000, from querier: String = "198.18.1.1"
  ) -> MembershipQuery {
    MembershipQuery(
      querierProtocol: .igmp, version: version, querier: IPAddress(querier)!, group: IPAddress(group)!, sources: [],
      maxResponseMilliseconds: maxResponse, suppressRouterSide: false, robustness: robustness,
      queryIntervalSeconds: interval, ttl: 1, routerAlert: true)
  }

  @Test func absentUntilTheFirstGeneralQuery() {
    var state = QuerierState(settings: .init())
    #expect(!state.isPresent(atMonotonicNanoseconds: 0))
    state.record(igmp(version: 2, group: "239.1.1.1"), monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(!state.isPresent(atMonotonicNanoseconds: 0), "a group-specific query proves no general querier")
    #expect(state.lastGeneral == nil && state.queries == [.init(version: 2, kind: .group): 1])
  }

  @Test func standardTimersGive255Seconds() {
    var state = QuerierState(settings: .init())
    state.record(igmp(version: 2), monotonicNanoseconds: 1_000 * second, unixNanoseconds: 1_700_000_000 * second)
    #expect(state.queryIntervalSeconds == 125 && state.robustness == 2 && state.maxResponseSeconds == 10)
    #expect(state.timeoutNanoseconds == 255 * second)
    #expect(state.isPresent(atMonotonicNanoseconds: 1_255 * second))
    #expect(!state.isPresent(atMonotonicNanoseconds: 1_255 * second + 1))
    #expect(state.lastGeneral?.unixNanoseconds == 1_700_000_000 * second)
  }

  @Test func announcedValuesWinOverConfiguredOnes() {
    var state = QuerierState(settings: .init(queryInterval: .seconds(60), queryResponseInterval: .seconds(10), robustness: 3))
    // IGMPv3 with QQIC 2 s, QRV 2, max response 1 s: 2 × 2 + 0.5 = 4.5 s.
    state.record(igmp(version: 3, interval: 2, robustness: 2, maxResponse: 1_000), monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(state.queryIntervalSeconds == 2 && state.robustness == 2 && state.maxResponseSeconds == 1)
    #expect(state.timeoutNanoseconds == 4_500_000_000)
    #expect(state.isPresent(atMonotonicNanoseconds: 4_400_000_000))
    #expect(!state.isPresent(atMonotonicNanoseconds: 4_600_000_000))
  }

  @Test func intervalFallbacks() {
    // IGMPv2 / MLDv1 announce nothing: the configured interval and robustness, else 125 s.
    var configured = QuerierState(settings: .init(queryInterval: .seconds(3), queryResponseInterval: .seconds(1), robustness: 3))
    configured.record(igmp(version: 2, maxResponse: 1_000), monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(configured.queryIntervalSeconds == 3 && configured.robustness == 3)
    #expect(configured.timeoutNanoseconds == 9_500_000_000)
    // IGMPv3 with QQIC 0 and QRV 0 (a robustness above 7): the configured values.
    configured.record(igmp(version: 3, maxResponse: 2_000), monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(configured.queryIntervalSeconds == 3 && configured.robustness == 3 && configured.maxResponseSeconds == 2)
    var unconfigured = QuerierState(settings: .init())
    unconfigured.record(igmp(version: 2), monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(unconfigured.queryIntervalSeconds == 125)
  }

  @Test func igmpV1QueriesTakeTheConfiguredResponseInterval() {
    // IGMPv1 announces no max response: query_response_interval is the one in force.
    var state = QuerierState(settings: .init(queryInterval: .seconds(20), queryResponseInterval: .milliseconds(1500)))
    state.record(igmp(version: 1, maxResponse: nil), monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(state.maxResponseSeconds == 1.5)
    #expect(state.timeoutNanoseconds == 40_750_000_000)
    #expect(state.isPresent(atMonotonicNanoseconds: 40_750_000_000))
    #expect(!state.isPresent(atMonotonicNanoseconds: 40_750_000_001))
    // The default, 10 s, is what IGMPv1 hosts use (RFC 2236 4): 2 × 125 + 5 = 255 s.
    var standard = QuerierState(settings: .init())
    standard.record(igmp(version: 1, maxResponse: nil), monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(standard.timeoutNanoseconds == 255 * second)
  }

  @Test func countsByVersionAndKindAndFollowsTheLastGeneralQuery() {
    var state = QuerierState(settings: .init())
    state.record(igmp(version: 3, interval: 30), monotonicNanoseconds: 0, unixNanoseconds: 0)
    state.record(igmp(version: 3, interval: 30), monotonicNanoseconds: 1, unixNanoseconds: 1)
    #expect(state.queryIntervalSeconds == 30)
    state.record(igmp(version: 2), monotonicNanoseconds: 2, unixNanoseconds: 2)
    state.record(igmp(version: 2, from: "0.0.0.0"), monotonicNanoseconds: 3, unixNanoseconds: 3)
    state.recordMalformed()
    #expect(state.queries == [.init(version: 3, kind: .general): 2, .init(version: 2, kind: .general): 2])
    #expect(state.malformed == 1)
    #expect(state.lastGeneral?.querier == IPAddress("0.0.0.0") && state.lastGeneral?.version == 2)
    #expect(state.queryIntervalSeconds == 30, "the v2 queries announced no interval: the v3 querier's is kept")
  }

  @Test func v2AndV3QueriersOnOneLinkKeepOneTimeout() {
    // A v3 querier announcing QQIC 10 s, QRV 3, max response 2 s, and a v2 proxy querier
    // (no QQIC, no QRV, the same max response) taking turns: the timeout never flips back to the
    // configured 125 s and robustness 2.
    var state = QuerierState(settings: .init())
    var timeouts: Set<Int64> = []
    for round in Int64(0)..<6 {
      state.record(
        igmp(version: 3, interval: 10, robustness: 3, maxResponse: 2_000), monotonicNanoseconds: round * 10 * second,
        unixNanoseconds: 0)
      timeouts.insert(state.timeoutNanoseconds)
      state.record(
        igmp(version: 2, maxResponse: 2_000, from: "0.0.0.0"), monotonicNanoseconds: round * 10 * second + second,
        unixNanoseconds: 0)
      timeouts.insert(state.timeoutNanoseconds)
    }
    #expect(timeouts == [31 * second], "3 × 10 s + 2 s / 2")
    #expect(state.announced == .init(queryIntervalSeconds: 10, robustness: 3, maxResponseMilliseconds: 2_000))
    // A max response announced by the v2 querier replaces the v3 one; the interval stays.
    state.record(igmp(version: 2, maxResponse: 4_000), monotonicNanoseconds: 100 * second, unixNanoseconds: 0)
    #expect(state.queryIntervalSeconds == 10 && state.robustness == 3 && state.maxResponseSeconds == 4)
    // A group-specific query announces nothing for the link.
    state.record(
      igmp(version: 3, group: "239.1.1.1", interval: 99, robustness: 7, maxResponse: 100), monotonicNanoseconds: 101 * second,
      unixNanoseconds: 0)
    #expect(state.queryIntervalSeconds == 10 && state.robustness == 3 && state.maxResponseSeconds == 4)
  }

  @Test func aStrayAnnouncementLastsOnlyWhileItsQuerierIsHeard() {
    // One IGMPv3 query from 198.18.1.9 announcing QQIC 31,744 s and QRV 7, on a link whose
    // querier, 198.18.1.1, speaks IGMPv2 every 125 s: the stray's 62-hour timeout holds
    // only until it has been silent for the configured timeout (255 s), not for days.
    var state = QuerierState(settings: .init())
    state.record(
      igmp(version: 3, interval: 31_744, robustness: 7, maxResponse: 10_000, from: "198.18.1.9"),
      monotonicNanoseconds: 0, unixNanoseconds: 0)
    #expect(state.queryIntervalSeconds == 31_744 && state.robustness == 7)
    var time: Int64 = 0
    for _ in 0..<2 {
      time += 125 * second
      state.record(igmp(version: 2, from: "198.18.1.1"), monotonicNanoseconds: time, unixNanoseconds: 0)
    }
    #expect(state.queryIntervalSeconds == 31_744, "250 s after the stray: it may still be a querier")
    time += 125 * second
    state.record(igmp(version: 2, from: "198.18.1.1"), monotonicNanoseconds: time, unixNanoseconds: 0)
    #expect(state.queryIntervalSeconds == 125 && state.robustness == 2 && state.timeoutNanoseconds == 255 * second)
    #expect(state.announced.queryIntervalSeconds == nil, "the gauge shows no announced interval any more")
    // The v2 querier dies: absent 255 s after its last query, not 62 hours.
    #expect(!state.isPresent(atMonotonicNanoseconds: time + 255 * second + 1))
    // Another v3 querier replaces the announcement rather than merging with it.
    state.record(
      igmp(version: 3, interval: 20, robustness: nil, maxResponse: 1_000, from: "198.18.1.2"),
      monotonicNanoseconds: time + second, unixNanoseconds: 0)
    #expect(state.queryIntervalSeconds == 20 && state.robustness == 2)
  }

  @Test func startingToListenIsNotEvidenceOfAbsence() {
    // Standard timers: for 255 s after the watch opens its socket, no query yet is no alarm.
    var state = QuerierState(settings: .init())
    #expect(!state.isPresent(atMonotonicNanoseconds: 0), "not listening, nothing heard")
    state.startedListening(atMonotonicNanoseconds: 1_000 * second)
    #expect(state.isPresent(atMonotonicNanoseconds: 1_000 * second))
    #expect(state.isPresent(atMonotonicNanoseconds: 1_060 * second), "a minute after start: a 125 s querier may not have spoken")
    #expect(state.isPresent(atMonotonicNanoseconds: 1_255 * second))
    #expect(!state.isPresent(atMonotonicNanoseconds: 1_255 * second + 1), "a full timeout of silence")
    #expect(state.presentUntil(atMonotonicNanoseconds: 1_100 * second) == 1_255 * second + 1)
    #expect(state.presentUntil(atMonotonicNanoseconds: 1_256 * second) == nil)
    #expect(state.lastGeneral == nil)

    // The test's short timers: 2 × 3 s + 1 s / 2 = 6.5 s; a query during the grace extends it.
    var short = QuerierState(settings: .init(queryInterval: .seconds(3), queryResponseInterval: .seconds(1)))
    short.startedListening(atMonotonicNanoseconds: 10 * second)
    short.record(igmp(version: 2, maxResponse: 1_000), monotonicNanoseconds: 12 * second, unixNanoseconds: 0)
    #expect(short.presentUntil(atMonotonicNanoseconds: 13 * second) == 18_500_000_001)
    #expect(short.isPresent(atMonotonicNanoseconds: 18_500_000_000))
    #expect(!short.isPresent(atMonotonicNanoseconds: 18_500_000_001))

    // A socket that closed (the interface went away) gives no grace; one opened again does.
    var closed = QuerierState(settings: .init(queryInterval: .seconds(3), queryResponseInterval: .seconds(1)))
    closed.startedListening(atMonotonicNanoseconds: 0)
    closed.stoppedListening()
    #expect(!closed.isPresent(atMonotonicNanoseconds: second))
    closed.startedListening(atMonotonicNanoseconds: 20 * second)
    #expect(closed.isPresent(atMonotonicNanoseconds: 26 * second) && !closed.isPresent(atMonotonicNanoseconds: 27 * second))
  }
}

@Suite struct QuerierSeriesTests {
  let igmp = QuerierWatch.Key(interface: "eth0", querierProtocol: .igmp)
  let mld = QuerierWatch.Key(interface: "eth0", querierProtocol: .mld)

  func render(_ board: QuerierBoard, now: Int64) -> [String] {
    var exposition = Exposition()
    QuerierSeries.collect(board.snapshot(), now: now, into: &exposition)
    return String(decoding: exposition.render(), as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
  }

  @Test func seriesBeforeAndAfterTheFirstGeneralQuery() throws {
    let board = QuerierBoard()
    board.configure([igmp, mld], settings: .init(queryInterval: .seconds(3), queryResponseInterval: .seconds(1), robustness: 2))
    #expect(
      render(board, now: 0) == [
        #"netprobe_querier_malformed_packets_total{interface="eth0",protocol="igmp"} 0"#,
        #"netprobe_querier_malformed_packets_total{interface="eth0",protocol="mld"} 0"#,
        #"netprobe_querier_present{interface="eth0",protocol="igmp"} 0"#,
        #"netprobe_querier_present{interface="eth0",protocol="mld"} 0"#,
      ], "not listening yet: nothing to go by")
    // Listening on IGMP since 0: present for the 6.5 s a querier has to be heard in.
    board.listening(igmp, since: 0)
    #expect(render(board, now: 6_500_000_000).contains(#"netprobe_querier_present{interface="eth0",protocol="igmp"} 1"#))
    #expect(render(board, now: 6_500_000_001).contains(#"netprobe_querier_present{interface="eth0",protocol="igmp"} 0"#))
    let datagram = hex("46 c0 00 24 00 00 40 00 01 02 42 69 c0 a8 01 01 e0 00 00 01 94 04 00 00 11 64 ec 1e 00 00 00 00 02 7d 00 00")
    let query = try #require(expectQuery(MembershipQuery.decodeIGMP(datagram[...])))
    _ = board.record(igmp, query, monotonicNanoseconds: 0, unixNanoseconds: 1_700_000_000_500_000_000)
    board.recordMalformed(igmp)
    #expect(
      render(board, now: 1_000_000_000) == [
        #"netprobe_querier_info{interface="eth0",protocol="igmp",querier="192.168.1.1",version="3"} 1"#,
        #"netprobe_querier_last_general_query_timestamp_seconds{interface="eth0",protocol="igmp"} 1700000000.5"#,
        #"netprobe_querier_malformed_packets_total{interface="eth0",protocol="igmp"} 1"#,
        #"netprobe_querier_malformed_packets_total{interface="eth0",protocol="mld"} 0"#,
        #"netprobe_querier_max_response_seconds{interface="eth0",protocol="igmp"} 10"#,
        #"netprobe_querier_present{interface="eth0",protocol="igmp"} 1"#,
        #"netprobe_querier_present{interface="eth0",protocol="mld"} 0"#,
        #"netprobe_querier_queries_received_total{interface="eth0",protocol="igmp",version="3",kind="general"} 1"#,
        #"netprobe_querier_query_interval_seconds{interface="eth0",protocol="igmp"} 125"#,
        #"netprobe_querier_robustness{interface="eth0",protocol="igmp"} 2"#,
      ])
    // 2 × 125 s + 10 s / 2 later the querier is gone; its last values stay visible.
    let after = render(board, now: 255_000_000_001)
    #expect(after.contains(#"netprobe_querier_present{interface="eth0",protocol="igmp"} 0"#))
    #expect(after.contains(#"netprobe_querier_info{interface="eth0",protocol="igmp",querier="192.168.1.1",version="3"} 1"#))
  }

  @Test func theQueryIntervalSeriesShowsOnlyAnAnnouncedInterval() throws {
    let board = QuerierBoard()
    board.configure([igmp], settings: .init(queryInterval: .seconds(3), queryResponseInterval: .seconds(1), robustness: 2))
    board.listening(igmp, since: 0)
    // An IGMPv2 general query: no QQIC, so no interval series (the timeout uses the configured 3 s).
    let v2 = try #require(expectQuery(MembershipQuery.decodeIGMPMessage(hex("11 64 ee 9b 00 00 00 00")[...], source: router)))
    _ = board.record(igmp, v2, monotonicNanoseconds: 0, unixNanoseconds: 0)
    var lines = render(board, now: 0)
    #expect(!lines.contains { $0.hasPrefix("netprobe_querier_query_interval_seconds") }, "\(lines)")
    #expect(lines.contains(#"netprobe_querier_max_response_seconds{interface="eth0",protocol="igmp"} 10"#))
    // The query's 10 s max response replaced the configured 1 s: 2 × 3 s + 10 s / 2.
    #expect(render(board, now: 11_000_000_000).contains(#"netprobe_querier_present{interface="eth0",protocol="igmp"} 1"#))
    #expect(render(board, now: 11_000_000_001).contains(#"netprobe_querier_present{interface="eth0",protocol="igmp"} 0"#))
    // An IGMPv3 one announcing QQIC 2 s, then the v2 one again: 2 s stays.
    let v3 = try #require(expectQuery(MembershipQuery.decodeIGMPMessage(hex("11 0a ec f3 00 00 00 00 02 02 00 00")[...], source: router)))
    _ = board.record(igmp, v3, monotonicNanoseconds: 0, unixNanoseconds: 0)
    _ = board.record(igmp, v2, monotonicNanoseconds: 0, unixNanoseconds: 0)
    lines = render(board, now: 0)
    #expect(lines.contains(#"netprobe_querier_query_interval_seconds{interface="eth0",protocol="igmp"} 2"#), "\(lines)")
    #expect(lines.contains(#"netprobe_querier_info{interface="eth0",protocol="igmp",querier="192.168.1.1",version="2"} 1"#))
  }

  @Test func reconfiguringKeepsCountersOfKeptInterfaces() throws {
    let board = QuerierBoard()
    board.configure([igmp, mld], settings: .init())
    board.recordMalformed(igmp)
    board.recordMalformed(mld)
    board.listening(igmp, since: 5)
    board.configure([igmp], settings: .init(queryInterval: .seconds(30)))
    let snapshot = board.snapshot()
    #expect(snapshot.map(\.0) == [igmp])
    #expect(snapshot.first?.1.malformed == 1 && snapshot.first?.1.settings.queryInterval == .seconds(30))
    #expect(snapshot.first?.1.listeningSince == 5, "a reload does not restart the grace of a socket that stays open")
    board.listening(igmp, since: nil)
    #expect(board.snapshot().first?.1.listeningSince == nil)
    let query = try #require(
      expectQuery(
        MembershipQuery.decodeMLD(
          hex("82 00 00 00 27 10 00 00" + String(repeating: "00", count: 16))[...],
          source: linkLocal)))
    #expect(board.record(mld, query, monotonicNanoseconds: 0, unixNanoseconds: 0) == nil, "a key no longer watched")
  }
}
