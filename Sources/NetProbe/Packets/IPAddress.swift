/// An IPv4 or IPv6 address as a value, parsed and printed without the C library, so that
/// the config check and the metric labels never depend on the host's resolver.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
  /// Four bytes, network order.
  case v4(UInt32)
  /// Sixteen bytes, network order, plus the zone (`fe80::1%eth0`) for link-local use.
  case v6(IPv6Bytes, zone: String?)

  /// The address family, for labels and for matching a source to its group.
  public enum Family: String, Sendable, Hashable, CaseIterable {
    case ip4
    case ip6
  }

  public var family: Family {
    switch self {
    case .v4: .ip4
    case .v6: .ip6
    }
  }

  /// Parses `192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1` or `fe80::1%eth0`.
  /// IPv4 octets with leading zeros are rejected: libc reads them as octal in some calls.
  public init?(_ text: some StringProtocol) {
    if let v4 = IPAddress.parseV4(Substring(text)) {
      self = .v4(v4)
    } else if let v6 = IPAddress.parseV6(Substring(text)) {
      self = v6
    } else {
      return nil
    }
  }

  public var bytes: [UInt8] {
    switch self {
    case .v4(let value):
      return [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    case .v6(let bytes, _):
      return bytes.array
    }
  }

  /// The `%zone` of an IPv6 address, if it has one.
  public var zone: String? {
    if case .v6(_, let zone) = self { return zone }
    return nil
  }

  /// 224.0.0.0/4 or ff00::/8.
  public var isMulticast: Bool {
    switch self {
    case .v4(let value): value >> 28 == 0xE
    case .v6(let bytes, _): bytes.array[0] == 0xFF
    }
  }

  /// 127.0.0.0/8 or ::1.
  public var isLoopback: Bool {
    switch self {
    case .v4(let value): value >> 24 == 127
    case .v6(let bytes, _): bytes.array == [UInt8](repeating: 0, count: 15) + [1]
    }
  }

  /// 0.0.0.0 or ::.
  public var isUnspecified: Bool {
    switch self {
    case .v4(let value): value == 0
    case .v6(let bytes, _): bytes.array.allSatisfy { $0 == 0 }
    }
  }

  /// The canonical text: dotted quad, or RFC 5952 for IPv6 (lowercase, the longest run of
  /// zero groups compressed), with `%zone` when present. This is the `address` label.
  public var description: String {
    switch self {
    case .v4:
      return bytes.map(String.init).joined(separator: ".")
    case .v6(let bytes, let zone):
      return IPAddress.formatV6(bytes.array) + (zone.map { "%\($0)" } ?? "")
    }
  }

  private static func parseV4(_ text: Substring) -> UInt32? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var value: UInt32 = 0
    for part in parts {
      guard (1...3).contains(part.count), part.allSatisfy(\.isASCIIDigit),
        part.count == 1 || part.first != "0", let octet = UInt32(part), octet <= 255
      else { return nil }
      value = value << 8 | octet
    }
    return value
  }

  private static func parseV6(_ text: Substring) -> IPAddress? {
    var body = text
    var zone: String?
    if let percent = text.firstIndex(of: "%") {
      let zoneText = text[text.index(after: percent)...]
      guard !zoneText.isEmpty, zoneText.count <= 15,
        zoneText.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "/" && $0 != "%" })
      else { return nil }
      zone = String(zoneText)
      body = text[..<percent]
    }
    guard body.contains(":"), body.count <= 45 else { return nil }
    let halves = body.components(separatedBy: "::")
    guard halves.count <= 2 else { return nil }
    func groups(_ part: String, allowV4Tail: Bool) -> [UInt16]? {
      if part.isEmpty { return [] }
      var result: [UInt16] = []
      let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
      for (index, piece) in pieces.enumerated() {
        if index == pieces.count - 1, allowV4Tail, piece.contains(".") {
          guard let v4 = parseV4(piece) else { return nil }
          result.append(UInt16(v4 >> 16))
          result.append(UInt16(v4 & 0xFFFF))
        } else {
          guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
            let group = UInt16(piece, radix: 16)
          else { return nil }
          result.append(group)
        }
      }
      return result
    }
    var all: [UInt16]
    if halves.count == 2 {
      guard let head = groups(halves[0], allowV4Tail: false),
        let tail = groups(halves[1], allowV4Tail: true), head.count + tail.count <= 7
      else { return nil }
      all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
    } else {
      guard let only = groups(halves[0], allowV4Tail: true), only.count == 8 else { return nil }
      all = only
    }
    var bytes: [UInt8] = []
    for group in all { bytes += [UInt8(group >> 8), UInt8(group & 0xFF)] }
    return .v6(IPv6Bytes(bytes), zone: zone)
  }

  private static func formatV6(_ bytes: [UInt8]) -> String {
    let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
    // The longest run of two or more zero groups, the first one on a tie (RFC 5952 4.2).
    var best = (start: -1, length: 0)
    var index = 0
    while index < 8 {
      if groups[index] == 0 {
        var end = index
        while end < 8 && groups[end] == 0 { end += 1 }
        if end - index > best.length { best = (index, end - index) }
        index = end
      } else {
        index += 1
      }
    }
    let hex = groups.map { String($0, radix: 16) }
    guard best.length >= 2 else { return hex.joined(separator: ":") }
    let head = hex[..<best.start].joined(separator: ":")
    let tail = hex[(best.start + best.length)...].joined(separator: ":")
    return head + "::" + tail
  }
}

/// Sixteen bytes, held inline so that an `IPAddress` allocates nothing.
public struct IPv6Bytes: Sendable, Hashable {
  public var high: UInt64
  public var low: UInt64

  public init(_ bytes: [UInt8]) {
    precondition(bytes.count == 16, "an IPv6 address has 16 bytes")
    high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
    low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
  }

  public var array: [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
      + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
  }
}

extension Character {
  var isASCIIDigit: Bool { isASCII && isNumber }
}
