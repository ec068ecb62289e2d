/// An ICMP error about one of our echo requests: Time Exceeded from a router on the path,
/// Destination Unreachable, or (IPv6) Packet Too Big, with the part of our request that
/// the router quoted back.
public struct ICMPError: Sendable, Equatable {
  public enum Kind: Sendable, Equatable {
    case timeExceeded
    /// With the ICMP code: 0 net, 1 host, 3 port, 4 fragmentation needed, 13 prohibited…
    /// (ICMPv6: 0 no route, 1 prohibited, 3 address, 4 port).
    case unreachable(code: UInt8)
    /// IPv4 "fragmentation needed" or ICMPv6 "packet too big", with the next-hop MTU; nil
    /// when the router left it 0 (routers older than RFC 1191 do): unknown, not 0 bytes.
    case mtuExceeded(mtu: Int?)
  }

  public var kind: Kind
  /// The destination of the quoted request: which target it was for.
  public var quotedDestination: IPAddress
  /// The quoted echo request: identifier, sequence and as much payload as was quoted.
  public var quotedEcho: ICMPEcho

  /// Decodes an ICMP error message (the ICMP part: after the outer IPv4 header on raw IPv4
  /// sockets). Nil for anything else, for errors about other protocols, or when the quote is
  /// too short to name the request.
  public static func decode(_ message: ArraySlice<UInt8>, family: IPAddress.Family) -> ICMPError? {
    guard message.count >= 8 else { return nil }
    let base = message.startIndex
    let type = message[base]
    let code = message[base + 1]
    let kind: Kind
    switch (family, type) {
    case (.ip4, ICMPType.timeExceededV4), (.ip6, ICMPType.timeExceededV6):
      guard code == 0 else { return nil }  // 1 = fragment reassembly time exceeded: not a hop
      kind = .timeExceeded
    case (.ip4, ICMPType.destinationUnreachableV4):
      kind =
        code == 4
        ? .mtuExceeded(mtu: knownMTU(Int(message[base + 6]) << 8 | Int(message[base + 7])))
        : .unreachable(code: code)
    case (.ip6, ICMPType.destinationUnreachableV6):
      kind = .unreachable(code: code)
    case (.ip6, ICMPType.packetTooBigV6):
      kind = .mtuExceeded(mtu: knownMTU(message[(base + 4)..<(base + 8)].reduce(0) { $0 << 8 | Int($1) }))
    default:
      return nil
    }
    let quote = message.dropFirst(8)
    switch family {
    case .ip4:
      guard let inner = IPv4Header.decode(quote), inner.protocolNumber == 1 else { return nil }
      guard let echo = ICMPEcho.decode(quote.dropFirst(inner.headerLength)), echo.type == ICMPType.echoRequestV4 else { return nil }
      return ICMPError(kind: kind, quotedDestination: inner.destination, quotedEcho: echo)
    case .ip6:
      // The quoted IPv6 header: 40 bytes, next header 58 (ICMPv6) with no extension headers.
      guard quote.count >= 48, quote[quote.startIndex] >> 4 == 6, quote[quote.startIndex + 6] == 58 else { return nil }
      let destination = IPAddress.v6(IPv6Bytes(Array(quote[(quote.startIndex + 24)..<(quote.startIndex + 40)])), zone: nil)
      guard let echo = ICMPEcho.decode(quote.dropFirst(40)), echo.type == ICMPType.echoRequestV6 else { return nil }
      return ICMPError(kind: kind, quotedDestination: destination, quotedEcho: echo)
    }
  }

  /// A next-hop MTU as reported: 0 means the router did not say.
  public static func knownMTU(_ value: Int) -> Int? { value > 0 ? value : nil }
}

/// What a datagram socket's error queue (IP_RECVERR / IPV6_RECVERR) says about a failed
/// probe: `struct sock_extended_err` followed by the offender's address.
public struct ExtendedError: Sendable, Equatable {
  /// SO_EE_ORIGIN_ICMP (2) or SO_EE_ORIGIN_ICMP6 (3) for errors a router sent.
  public var origin: UInt8
  public var type: UInt8
  public var code: UInt8
  /// The MTU for "fragmentation needed" / "packet too big".
  public var info: UInt32
  /// The router (or host) that sent the error.
  public var offender: IPAddress?

  /// Decodes the 16-byte struct and the `sockaddr_in`/`sockaddr_in6` after it. The kernel
  /// writes `ee_info` and `sin_family` in host byte order: they are read as the host stores
  /// them, whatever its endianness; the offender's address is in network byte order.
  public static func decode(_ bytes: [UInt8]) -> ExtendedError? {
    guard bytes.count >= 16 else { return nil }
    let info = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
    var error = ExtendedError(origin: bytes[4], type: bytes[5], code: bytes[6], info: info, offender: nil)
    guard bytes.count >= 18 else { return error }
    let family = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt16.self) }
    if family == 2, bytes.count >= 24 {
      error.offender = .v4(bytes[20..<24].reduce(0) { $0 << 8 | UInt32($1) })
    } else if family == 10, bytes.count >= 40 {
      error.offender = .v6(IPv6Bytes(Array(bytes[24..<40])), zone: nil)
    }
    return error
  }
}
