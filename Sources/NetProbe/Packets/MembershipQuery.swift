/// IGMP (RFC 1112, 2236, 3376) and MLD (RFC 2710, 3810) membership queries, decoded from the
/// bytes a raw socket hands over. Pure: no sockets, no clocks.
///
/// The version is told apart the way the Linux kernel (and RFC 3376 7.1 / RFC 3810 8.1) does
/// it, by the message length alone: an IGMP query of 8 bytes is v1 when its Max Response
/// Code is 0 and v2 otherwise, one of 12 bytes or more is v3, anything between is no query
/// at all; an MLD query of 24 bytes is v1, one of 28 bytes or more is v2.
public struct MembershipQuery: Sendable, Equatable {
  public var querierProtocol: QuerierProtocol
  /// 1, 2 or 3 for IGMP; 1 or 2 for MLD.
  public var version: Int
  /// The IP source: the querier, or 0.0.0.0 from a snooping switch that queries by proxy.
  public var querier: IPAddress
  /// 0.0.0.0 / :: for a general query, else the group asked about.
  public var group: IPAddress
  /// The sources of a group-and-source-specific query (IGMPv3, MLDv2).
  public var sources: [IPAddress]
  /// The maximum response time, decoded; nil for IGMPv1, whose queries carry none (hosts
  /// use 10 s, RFC 2236 4; the querier watch assumes its `query_response_interval`).
  public var maxResponseMilliseconds: Int?
  /// The S flag (IGMPv3, MLDv2): routers skip their timer updates.
  public var suppressRouterSide: Bool
  /// QRV, the querier's robustness variable; nil when absent (older versions) or 0.
  public var robustness: Int?
  /// QQIC decoded to seconds, the querier's query interval; nil when absent or 0.
  public var queryIntervalSeconds: Int?
  /// The IP TTL / hop limit, when known.
  public var ttl: Int?
  /// Whether the packet carried a Router Alert option, when known.
  public var routerAlert: Bool?

  /// The `kind` label: general, group-specific, or group-and-source-specific.
  public var kind: QueryKind {
    if group.isUnspecified { return .general }
    return sources.isEmpty ? .group : .groupSource
  }

  /// The `version` label.
  public var versionLabel: String { String(version) }
}

/// What a query asks about.
public enum QueryKind: String, Sendable, Hashable, CaseIterable, Comparable {
  case general
  case group
  case groupSource = "group_source"

  public static func < (a: QueryKind, b: QueryKind) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// Why a packet was counted as malformed and ignored.
public enum MalformedReason: String, Sendable, Hashable, CaseIterable {
  /// Shorter than its header, or than its own length or source count says.
  case truncated
  /// The IGMP checksum does not verify (the kernel checks ICMPv6's before we see it).
  case badChecksum = "bad_checksum"
  /// Not an IPv4 datagram carrying IGMP, or a query length no version defines (IGMP 9–11
  /// bytes, MLD 25–27 bytes).
  case unknownLayout = "unknown_layout"
  /// The group field is neither zero nor a multicast address.
  case invalidGroup = "invalid_group"
  /// A general query that lists sources (RFC 3376 4.1.9, RFC 3810 5.1.10).
  case sourcesInGeneralQuery = "sources_in_general_query"
  /// An MLD query whose source is not link-local, or whose hop limit is not 1, or that
  /// lacks the Router Alert option: RFC 3810 6.2 has hosts drop it (Linux does).
  case invalidMLDEnvelope = "invalid_mld_envelope"
}

/// The outcome of decoding one packet.
public enum MembershipPacket: Sendable, Equatable {
  case query(MembershipQuery)
  /// A well-formed message of the protocol that is not a query: a report or leave (IGMP
  /// 0x12, 0x16, 0x17, 0x22) or another IGMP type (DVMRP, mtrace, router discovery).
  case notQuery(type: UInt8)
  case malformed(MalformedReason)
}

extension MembershipQuery {
  public static let igmpQueryType: UInt8 = 0x11
  public static let mldQueryType: UInt8 = 130

  /// Decodes an IPv4 datagram read from a raw `IPPROTO_IGMP` socket (IP header included, as
  /// Linux delivers it, total length in network order).
  public static func decodeIGMP(_ datagram: ArraySlice<UInt8>) -> MembershipPacket {
    guard let header = IPv4Header.decode(datagram) else {
      return datagram.count < 20 ? .malformed(.truncated) : .malformed(.unknownLayout)
    }
    guard header.protocolNumber == 2 else { return .malformed(.unknownLayout) }
    guard header.totalLength >= header.headerLength else { return .malformed(.unknownLayout) }
    guard header.totalLength <= datagram.count else { return .malformed(.truncated) }
    let base = datagram.startIndex
    let options = datagram[(base + 20)..<(base + header.headerLength)]
    let message = datagram[(base + header.headerLength)..<(base + header.totalLength)]
    return decodeIGMPMessage(
      message, source: header.source, ttl: Int(header.ttl),
      routerAlert: IPv4Options.hasRouterAlert(options))
  }

  /// Decodes an IGMP message (after the IP header) sent from `source`.
  public static func decodeIGMPMessage(
    _ message: ArraySlice<UInt8>, source: IPAddress, ttl: Int? = nil,
    routerAlert: Bool? = nil
  ) -> MembershipPacket {
    guard message.count >= 8 else { return .malformed(.truncated) }
    guard InternetChecksum.isValid(message) else { return .malformed(.badChecksum) }
    let base = message.startIndex
    let type = message[base]
    guard type == igmpQueryType else { return .notQuery(type: type) }
    let code = message[base + 1]
    let group = IPAddress.v4(word32(message, base + 4))
    guard group.isUnspecified || group.isMulticast else { return .malformed(.invalidGroup) }
    var query = MembershipQuery(
      querierProtocol: .igmp, version: 1, querier: source, group: group, sources: [],
      maxResponseMilliseconds: nil, suppressRouterSide: false,
      robustness: nil, queryIntervalSeconds: nil, ttl: ttl, routerAlert: routerAlert)
    switch message.count {
    case 8:
      if code != 0 {
        query.version = 2
        query.maxResponseMilliseconds = Int(code) * 100
      }
    case 12...:
      let count = Int(message[base + 10]) << 8 | Int(message[base + 11])
      guard message.count >= 12 + 4 * count else { return .malformed(.truncated) }
      query.version = 3
      query.maxResponseMilliseconds = expandCode8(code) * 100
      query.suppressRouterSide = message[base + 8] & 0x08 != 0
      query.robustness = nonZero(Int(message[base + 8] & 0x07))
      query.queryIntervalSeconds = nonZero(expandCode8(message[base + 9]))
      query.sources = (0..<count).map { IPAddress.v4(word32(message, base + 12 + 4 * $0)) }
    default:
      return .malformed(.unknownLayout)
    }
    if query.kind == .general && !query.sources.isEmpty { return .malformed(.sourcesInGeneralQuery) }
    return .query(query)
  }

  /// Decodes an ICMPv6 message read from a raw `IPPROTO_ICMPV6` socket (the kernel strips
  /// the IPv6 header and has verified the checksum). `source`, `hopLimit` and `routerAlert`
  /// come from recvmsg's address and control messages; nil means unknown, not checked.
  public static func decodeMLD(
    _ message: ArraySlice<UInt8>, source: IPAddress, hopLimit: Int? = nil,
    routerAlert: Bool? = nil
  ) -> MembershipPacket {
    guard message.count >= 4 else { return .malformed(.truncated) }
    let base = message.startIndex
    let type = message[base]
    guard type == mldQueryType else { return .notQuery(type: type) }
    guard message.count >= 24 else { return .malformed(.truncated) }
    guard message.count == 24 || message.count >= 28 else { return .malformed(.unknownLayout) }
    guard case .v6(let sourceBytes, _) = source else { return .malformed(.unknownLayout) }
    let isLinkLocal = sourceBytes.high >> 54 == 0x3FA  // fe80::/10
    guard isLinkLocal, hopLimit ?? 1 == 1, routerAlert ?? true else { return .malformed(.invalidMLDEnvelope) }
    let group = IPAddress.v6(IPv6Bytes(Array(message[(base + 8)..<(base + 24)])), zone: nil)
    guard group.isUnspecified || group.isMulticast else { return .malformed(.invalidGroup) }
    let code = UInt16(message[base + 4]) << 8 | UInt16(message[base + 5])
    var query = MembershipQuery(
      querierProtocol: .mld, version: 1, querier: source, group: group, sources: [],
      maxResponseMilliseconds: Int(code), suppressRouterSide: false, robustness: nil,
      queryIntervalSeconds: nil, ttl: hopLimit, routerAlert: routerAlert)
    if message.count >= 28 {
      let count = Int(message[base + 26]) << 8 | Int(message[base + 27])
      guard message.count >= 28 + 16 * count else { return .malformed(.truncated) }
      query.version = 2
      query.maxResponseMilliseconds = expandCode16(code)
      query.suppressRouterSide = message[base + 24] & 0x08 != 0
      query.robustness = nonZero(Int(message[base + 24] & 0x07))
      query.queryIntervalSeconds = nonZero(expandCode8(message[base + 25]))
      query.sources = (0..<count).map { index in
        let start = base + 28 + 16 * index
        return IPAddress.v6(IPv6Bytes(Array(message[start..<(start + 16)])), zone: nil)
      }
    }
    if query.kind == .general && !query.sources.isEmpty { return .malformed(.sourcesInGeneralQuery) }
    return .query(query)
  }

  /// The 8-bit code of IGMPv3's Max Response Code and QQIC and MLDv2's QQIC (RFC 3376
  /// 4.1.1 and 4.1.7, RFC 3810 5.1.9): below 128 the value itself; from 128 on, a float
  /// `1 exp(3) mant(4)` worth `(mant | 0x10) << (exp + 3)`, so 0x80 is 128 and 0xFF 31744.
  public static func expandCode8(_ code: UInt8) -> Int {
    guard code >= 0x80 else { return Int(code) }
    let exponent = Int(code >> 4) & 0x07
    let mantissa = Int(code) & 0x0F
    return (mantissa | 0x10) << (exponent + 3)
  }

  /// MLDv2's 16-bit Maximum Response Code in milliseconds (RFC 3810 5.1.3): below 32768 the
  /// value itself; from 32768 on, `1 exp(3) mant(12)` worth `(mant | 0x1000) << (exp + 3)`.
  public static func expandCode16(_ code: UInt16) -> Int {
    guard code >= 0x8000 else { return Int(code) }
    let exponent = Int(code >> 12) & 0x07
    let mantissa = Int(code) & 0x0FFF
    return (mantissa | 0x1000) << (exponent + 3)
  }

  private static func word32(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
  }

  private static func nonZero(_ value: Int) -> Int? { value == 0 ? nil : value }
}

/// The IPv4 header options the querier watch looks at.
public enum IPv4Options {
  /// True when the options (the bytes between the fixed 20-byte header and IHL × 4) hold a
  /// Router Alert (RFC 2113: type 148, length 4). Stops at End of Options or a bad length.
  public static func hasRouterAlert(_ options: ArraySlice<UInt8>) -> Bool {
    var index = options.startIndex
    while index < options.endIndex {
      let type = options[index]
      if type == 0 { return false }
      if type == 1 {
        index += 1
        continue
      }
      guard index + 1 < options.endIndex else { return false }
      let length = Int(options[index + 1])
      guard length >= 2, index + length <= options.endIndex else { return false }
      if type == 148 && length == 4 { return true }
      index += length
    }
    return false
  }
}

/// IPv6 hop-by-hop options, as the IPV6_HOPOPTS control message hands over the header.
public enum HopByHopOptions {
  /// The value of the Router Alert option (RFC 2711: type 5, length 2; 0 means MLD) in a
  /// hop-by-hop options header, or nil when it has none or is malformed.
  public static func routerAlert(_ header: ArraySlice<UInt8>) -> UInt16? {
    guard header.count >= 2 else { return nil }
    let end = header.startIndex + min(header.count, (Int(header[header.startIndex + 1]) + 1) * 8)
    var index = header.startIndex + 2
    while index < end {
      let type = header[index]
      if type == 0 {
        index += 1
        continue
      }
      guard index + 1 < end else { return nil }
      let length = Int(header[index + 1])
      guard index + 2 + length <= end else { return nil }
      if type == 5 && length == 2 { return UInt16(header[index + 2]) << 8 | UInt16(header[index + 3]) }
      index += 2 + length
    }
    return nil
  }
}
