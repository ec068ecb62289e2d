/// ICMP and ICMPv6 messages the ping and path engines send and read.
///
/// Decoding never trusts a length field and returns nil on anything short or malformed,
/// so a packet from the network can never crash the agent.
public enum ICMPType {
  public static let echoReplyV4: UInt8 = 0
  public static let destinationUnreachableV4: UInt8 = 3
  public static let echoRequestV4: UInt8 = 8
  public static let timeExceededV4: UInt8 = 11
  public static let destinationUnreachableV6: UInt8 = 1
  public static let packetTooBigV6: UInt8 = 2
  public static let timeExceededV6: UInt8 = 3
  public static let echoRequestV6: UInt8 = 128
  public static let echoReplyV6: UInt8 = 129
}

/// An echo request or reply: the 8-byte header and the payload.
public struct ICMPEcho: Sendable, Equatable {
  public var type: UInt8
  public var code: UInt8
  public var identifier: UInt16
  public var sequence: UInt16
  public var payload: [UInt8]

  public init(type: UInt8, code: UInt8 = 0, identifier: UInt16, sequence: UInt16, payload: [UInt8]) {
    self.type = type
    self.code = code
    self.identifier = identifier
    self.sequence = sequence
    self.payload = payload
  }

  /// The message bytes. The checksum is filled in for ICMPv4; for ICMPv6 the kernel
  /// computes it (it covers a pseudo-header only the kernel knows), and datagram sockets
  /// recompute both anyway.
  public func encoded(family: IPAddress.Family) -> [UInt8] {
    var bytes: [UInt8] = [
      type, code, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF),
      UInt8(sequence >> 8), UInt8(sequence & 0xFF),
    ]
    bytes += payload
    if family == .ip4 {
      let checksum = InternetChecksum.compute(bytes)
      bytes[2] = UInt8(checksum >> 8)
      bytes[3] = UInt8(checksum & 0xFF)
    }
    return bytes
  }

  /// Reads an echo message (request or reply) from the start of an ICMP message.
  public static func decode(_ bytes: ArraySlice<UInt8>) -> ICMPEcho? {
    guard bytes.count >= 8 else { return nil }
    let base = bytes.startIndex
    return ICMPEcho(
      type: bytes[base], code: bytes[base + 1],
      identifier: UInt16(bytes[base + 4]) << 8 | UInt16(bytes[base + 5]),
      sequence: UInt16(bytes[base + 6]) << 8 | UInt16(bytes[base + 7]),
      payload: Array(bytes[(base + 8)...]))
  }
}

/// The IPv4 header fields a raw socket hands us before the ICMP message.
public struct IPv4Header: Sendable, Equatable {
  public var headerLength: Int
  public var totalLength: Int
  public var ttl: UInt8
  public var protocolNumber: UInt8
  public var source: IPAddress
  public var destination: IPAddress

  /// Parses and checks a header: version 4, IHL ≥ 5, the header within the buffer.
  public static func decode(_ bytes: ArraySlice<UInt8>) -> IPv4Header? {
    guard bytes.count >= 20 else { return nil }
    let base = bytes.startIndex
    let version = bytes[base] >> 4
    let length = Int(bytes[base] & 0x0F) * 4
    guard version == 4, length >= 20, bytes.count >= length else { return nil }
    func word(_ offset: Int) -> UInt32 {
      bytes[(base + offset)..<(base + offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
    return IPv4Header(
      headerLength: length, totalLength: Int(bytes[base + 2]) << 8 | Int(bytes[base + 3]),
      ttl: bytes[base + 8], protocolNumber: bytes[base + 9],
      source: .v4(word(12)), destination: .v4(word(16)))
  }
}
