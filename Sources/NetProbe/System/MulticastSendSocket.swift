@preconcurrency import Glibc
import CNetShims

/// A UDP socket that sends to one multicast group out of one interface.
///
/// Connected to the group, so each send is one `send(2)`; the outgoing interface is fixed
/// by index (IP_MULTICAST_IF with `ip_mreqn`, IPV6_MULTICAST_IF), the TTL / hop limit is
/// the configured scope, and loopback is off so this host's own receivers of the group
/// never count its beacons as traffic from the network.
public final class MulticastSendSocket: Sendable {
  private let socket: Socket

  public init(group: IPAddress, port: UInt16, interface: UInt32, ttl: Int) throws(SystemError) {
    switch group {
    case .v4:
      socket = try Socket(family: AF_INET, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
      var request = ip_mreqn()
      request.imr_ifindex = Int32(interface)
      try socket.setOption(level: Int32(IPPROTO_IP), name: IP_MULTICAST_IF, value: request, label: "IP_MULTICAST_IF")
      try socket.setOption(level: Int32(IPPROTO_IP), name: IP_MULTICAST_TTL, value: Int32(ttl), label: "IP_MULTICAST_TTL")
      try socket.setOption(level: Int32(IPPROTO_IP), name: IP_MULTICAST_LOOP, value: Int32(0), label: "IP_MULTICAST_LOOP")
    case .v6:
      socket = try Socket(family: AF_INET6, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
      let level = Int32(IPPROTO_IPV6)
      try socket.setOption(level: level, name: IPV6_MULTICAST_IF, value: Int32(interface), label: "IPV6_MULTICAST_IF")
      try socket.setOption(level: level, name: IPV6_MULTICAST_HOPS, value: Int32(ttl), label: "IPV6_MULTICAST_HOPS")
      try socket.setOption(level: level, name: IPV6_MULTICAST_LOOP, value: Int32(0), label: "IPV6_MULTICAST_LOOP")
    }
    try socket.connect(to: SocketAddress(group, port: port))
  }

  /// Sends one datagram; false when the socket buffer is full (the packet is not sent).
  public func send(_ bytes: [UInt8]) throws(SystemError) -> Bool {
    let result = bytes.withUnsafeBytes { raw in Result { () throws(SystemError) in try socket.send(raw) } }
    return try result.get() != .wouldBlock
  }

  public func close() { socket.close() }
}
