@preconcurrency import Glibc
import CNetShims

/// A raw socket that hears the IGMP or MLD queries arriving on one interface, for the
/// querier watch. It joins nothing: general queries go to 224.0.0.1 / ff02::1, which every
/// multicast interface is a member of, and a raw socket gets a copy of every IGMP / ICMPv6
/// packet the host accepts (before the kernel's own IGMP / MLD code sees it).
///
/// - IGMP: `socket(AF_INET, SOCK_RAW, IPPROTO_IGMP)`; reads start with the IPv4 header
///   (the querier is its source; IHL, TTL and options are in it).
/// - MLD: `socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)` with `ICMP6_FILTER` passing type 130
///   only; the kernel strips the IPv6 header and drops bad checksums, so the source comes
///   from recvmsg's address, the hop limit from `IPV6_RECVHOPLIMIT` and the Router Alert
///   from `IPV6_RECVHOPOPTS`.
///
/// Both are bound to the interface with `SO_BINDTODEVICE`, and `IP_PKTINFO` /
/// `IPV6_RECVPKTINFO` report the arrival interface of each packet as a second check.
public final class QuerierSocket: Sendable {
  public let querierProtocol: QuerierProtocol
  public let interface: String
  /// The index `interface` had when the socket was bound: a socket stays bound to it, so
  /// an interface deleted and created again under the same name needs a new socket.
  public let interfaceIndex: UInt32
  private let socket: Socket

  public var fileDescriptor: Int32 { socket.fileDescriptor }

  // From <linux/in6.h>; declared here like MulticastSocket's, in case Glibc leaves them out.
  private static let ipv6RecvPacketInfo: Int32 = 49
  private static let ipv6PacketInfo: Int32 = 50
  private static let ipv6RecvHopOptions: Int32 = 53
  private static let ipv6HopOptions: Int32 = 54
  private static let icmp6Filter: Int32 = 1
  private static let bindToInterfaceIndex: Int32 = 62  // SO_BINDTOIFINDEX, Linux 5.0

  /// Wraps socket(2), the setsockopt(2) calls above and SO_BINDTODEVICE.
  ///
  /// - Throws: `SystemError`: EPERM from `socket` without CAP_NET_RAW; ENODEV when no
  ///   interface has that name.
  public init(_ querierProtocol: QuerierProtocol, interface: String) throws(SystemError) {
    self.querierProtocol = querierProtocol
    self.interface = interface
    let nonblocking = Int32(SOCK_RAW.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    switch querierProtocol {
    case .igmp:
      socket = try Socket(family: AF_INET, type: nonblocking, protocol: Int32(IPPROTO_IGMP))
      try socket.setOption(level: Int32(IPPROTO_IP), name: IP_PKTINFO, value: Int32(1), label: "IP_PKTINFO")
    case .mld:
      socket = try Socket(family: AF_INET6, type: nonblocking, protocol: Int32(IPPROTO_ICMPV6))
      // struct icmp6_filter: a set bit blocks that type. Pass the Multicast Listener Query only.
      var words = [UInt32](repeating: ~0, count: 8)
      let query = MembershipQuery.mldQueryType
      words[Int(query >> 5)] &= ~(1 << UInt32(query & 31))
      let filter = (words[0], words[1], words[2], words[3], words[4], words[5], words[6], words[7])
      try socket.setOption(level: Int32(IPPROTO_ICMPV6), name: QuerierSocket.icmp6Filter, value: filter, label: "ICMP6_FILTER")
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: QuerierSocket.ipv6RecvPacketInfo, value: Int32(1), label: "IPV6_RECVPKTINFO")
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_RECVHOPLIMIT, value: Int32(1), label: "IPV6_RECVHOPLIMIT")
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: QuerierSocket.ipv6RecvHopOptions, value: Int32(1), label: "IPV6_RECVHOPOPTS")
    }
    try socket.setOption(level: SOL_SOCKET, name: SO_TIMESTAMPNS, value: Int32(1), label: "SO_TIMESTAMPNS")
    let fd = socket.fileDescriptor
    let name = Array(interface.utf8CString)
    _ = try retryingInterrupts("setsockopt(SO_BINDTODEVICE, \(interface))") {
      name.withUnsafeBufferPointer { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0.baseAddress, socklen_t($0.count)) }
    }
    // The index the socket is bound to, read back from the socket itself (the name may
    // have moved to another interface between a lookup and the bind).
    var index: Int32 = 0
    var length = socklen_t(4)
    if getsockopt(fd, SOL_SOCKET, QuerierSocket.bindToInterfaceIndex, &index, &length) == 0, index > 0 {
      interfaceIndex = UInt32(bitPattern: index)
    } else if let looked = NetworkInterface.index(of: interface) {
      interfaceIndex = looked  // kernels before 5.0 lack SO_BINDTOIFINDEX
    } else {
      throw SystemError("if_nametoindex(\(interface))", errno: ENODEV)
    }
  }

  /// Closes the descriptor now (it is closed on deinit otherwise).
  public func close() { socket.close() }

  /// One packet as read, with what the control messages said about it.
  public struct Packet: Sendable {
    /// IGMP: the whole IPv4 datagram. MLD: the ICMPv6 message.
    public var bytes: ArraySlice<UInt8>
    /// recvmsg's source address (for IGMP also in the IP header).
    public var source: IPAddress
    /// The arrival interface (IP_PKTINFO / IPV6_PKTINFO), when reported.
    public var interfaceIndex: Int32?
    /// MLD: the hop limit (IPV6_HOPLIMIT).
    public var hopLimit: Int?
    /// MLD: the Router Alert value of the hop-by-hop options; nil when there is none.
    public var routerAlert: UInt16?
    /// The kernel's receive time (SO_TIMESTAMPNS, CLOCK_REALTIME), ns since the epoch.
    public var kernelTimestamp: Int64?
  }

  /// Wraps recvmsg(2) for one packet; nil when none is waiting.
  public func receive(into buffer: inout [UInt8], control: inout [UInt8]) throws(SystemError) -> Packet? {
    guard
      let (count, storage, controlLength) = try ControlMessages.receive(socket.fileDescriptor, into: &buffer, control: &control, flags: 0)
    else { return nil }
    guard let source = SocketAddress(storage: storage)?.ip else { return nil }
    var packet = Packet(bytes: buffer[0..<min(count, buffer.count)], source: source)
    ControlMessages.walk(control, length: controlLength) { level, type, data in
      switch (level, type) {
      case (SOL_SOCKET, SO_TIMESTAMPNS) where data.count >= MemoryLayout<timespec>.size:
        let time = data.loadUnaligned(as: timespec.self)
        packet.kernelTimestamp = Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
      case (Int32(IPPROTO_IP), IP_PKTINFO) where data.count >= 12:
        // struct in_pktinfo { int ipi_ifindex; … }
        packet.interfaceIndex = data.loadUnaligned(as: Int32.self)
      case (Int32(IPPROTO_IPV6), QuerierSocket.ipv6PacketInfo) where data.count >= 20:
        // struct in6_pktinfo { in6_addr ipi6_addr; int ipi6_ifindex; }
        packet.interfaceIndex = data.loadUnaligned(fromByteOffset: 16, as: Int32.self)
      case (Int32(IPPROTO_IPV6), IPV6_HOPLIMIT) where data.count >= 4:
        packet.hopLimit = Int(data.loadUnaligned(as: Int32.self))
      case (Int32(IPPROTO_IPV6), QuerierSocket.ipv6HopOptions):
        packet.routerAlert = HopByHopOptions.routerAlert(Array(data)[...])
      default:
        break
      }
    }
    return packet
  }
}
