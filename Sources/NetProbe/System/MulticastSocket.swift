@preconcurrency import Glibc
import CNetShims

/// A UDP socket that receives multicast: joined to groups on named interfaces, with every
/// datagram attributed to the group it was sent to.
///
/// The recipe of ../shared/notes/multicast-on-linux.md: `IP_MULTICAST_ALL=0` so the socket
/// gets only the groups it joined (not every group any socket of the host joined on the
/// port), `IP_PKTINFO` for the destination group of each datagram, `SO_RXQ_OVFL` for drops
/// inside the host, kernel timestamps, `SO_REUSEADDR` so other receivers on the host keep
/// working, and a large receive buffer.
///
/// Not `SO_REUSEPORT`: measured in lab namespaces (kernel 6.18), two sockets on one port that
/// both set it form a reuseport group, and the kernel then delivers some datagrams of one
/// socket's group to the other by hash (4 to 6 ports of 12) — ours would take another
/// program's datagrams and it would lose them. The price: a receiver with `SO_REUSEPORT`
/// alone (or neither option) cannot share our port; ARCHITECTURE.md's "Other receivers on
/// the same port" has the table.
public final class MulticastSocket: Sendable {
  public let family: IPAddress.Family
  public let port: UInt16
  /// The receive buffer the kernel granted (it may cap what was asked).
  public let receiveBufferBytes: Int
  private let socket: Socket

  public var fileDescriptor: Int32 { socket.fileDescriptor }

  // Values from <bits/in.h> and <linux/in6.h> that Swift's Glibc module leaves out.
  private static let mcastJoinGroup: Int32 = 42
  private static let mcastJoinSourceGroup: Int32 = 46
  private static let ipMulticastAll: Int32 = 49
  private static let ipv6MulticastAll: Int32 = 29
  private static let ipv6RecvPacketInfo: Int32 = 49
  private static let ipv6PacketInfo: Int32 = 50
  private static let socketRXQueueOverflow: Int32 = 40

  /// Wraps socket(2), the options above and bind(2) to the wildcard address and `port`.
  /// `receiveBuffer` is asked for with SO_RCVBUFFORCE (CAP_NET_ADMIN), else SO_RCVBUF,
  /// which net.core.rmem_max caps; `receiveBufferBytes` says what was granted.
  public init(family: IPAddress.Family, port: UInt16, receiveBuffer: Int) throws(SystemError) {
    self.family = family
    self.port = port
    let domain = family == .ip4 ? AF_INET : AF_INET6
    socket = try Socket(family: domain, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
    try socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: Int32(1), label: "SO_REUSEADDR")
    try socket.setOption(level: SOL_SOCKET, name: SO_TIMESTAMPNS, value: Int32(1), label: "SO_TIMESTAMPNS")
    try socket.setOption(level: SOL_SOCKET, name: MulticastSocket.socketRXQueueOverflow, value: Int32(1), label: "SO_RXQ_OVFL")
    // SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN; without it, SO_RCVBUF is capped.
    if (try? socket.setOption(level: SOL_SOCKET, name: SO_RCVBUFFORCE, value: Int32(receiveBuffer), label: "SO_RCVBUFFORCE")) == nil {
      try socket.setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: Int32(receiveBuffer), label: "SO_RCVBUF")
    }
    var granted: Int32 = 0
    var length = socklen_t(4)
    getsockopt(socket.fileDescriptor, SOL_SOCKET, SO_RCVBUF, &granted, &length)
    // The kernel reports twice the usable size (it counts its bookkeeping).
    receiveBufferBytes = Int(granted) / 2
    switch family {
    case .ip4:
      try socket.setOption(level: Int32(IPPROTO_IP), name: MulticastSocket.ipMulticastAll, value: Int32(0), label: "IP_MULTICAST_ALL")
      try socket.setOption(level: Int32(IPPROTO_IP), name: IP_PKTINFO, value: Int32(1), label: "IP_PKTINFO")
      try socket.bind(to: SocketAddress(.v4(0), port: port))
    case .ip6:
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: Int32(1), label: "IPV6_V6ONLY")
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: MulticastSocket.ipv6MulticastAll, value: Int32(0), label: "IPV6_MULTICAST_ALL")
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: MulticastSocket.ipv6RecvPacketInfo, value: Int32(1), label: "IPV6_RECVPKTINFO")
      try socket.bind(to: SocketAddress(.v6(IPv6Bytes([UInt8](repeating: 0, count: 16)), zone: nil), port: port))
    }
  }

  /// Closes the socket, which leaves every group it joined.
  public func close() { socket.close() }

  /// Joins `group` on the interface with index `interface`: any-source when `source` is
  /// nil (MCAST_JOIN_GROUP), else source-specific (MCAST_JOIN_SOURCE_GROUP). There is no
  /// leave: closing the socket leaves its groups, and the engine closes to leave.
  public func join(_ group: IPAddress, source: IPAddress?, interface: UInt32) throws(SystemError) {
    let level = family == .ip4 ? Int32(IPPROTO_IP) : Int32(IPPROTO_IPV6)
    let fd = socket.fileDescriptor
    if let source {
      var request = group_source_req()
      request.gsr_interface = interface
      request.gsr_group = MulticastSocket.storage(group)
      request.gsr_source = MulticastSocket.storage(source)
      _ = try retryingInterrupts("setsockopt(MCAST_JOIN_SOURCE_GROUP)") {
        setsockopt(fd, level, MulticastSocket.mcastJoinSourceGroup, &request, socklen_t(MemoryLayout<group_source_req>.size))
      }
    } else {
      var request = group_req()
      request.gr_interface = interface
      request.gr_group = MulticastSocket.storage(group)
      _ = try retryingInterrupts("setsockopt(MCAST_JOIN_GROUP)") {
        setsockopt(fd, level, MulticastSocket.mcastJoinGroup, &request, socklen_t(MemoryLayout<group_req>.size))
      }
    }
  }

  static func storage(_ address: IPAddress) -> sockaddr_storage {
    var storage = sockaddr_storage()
    _ = try? SocketAddress(address, port: 0).withSockAddr { (pointer, length) throws(SystemError) in
      withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: Int(length))) }
    }
    return storage
  }

  /// One datagram: who sent it, to which group, on which interface, when, and the
  /// socket's running count of datagrams dropped for want of buffer space.
  public struct Datagram: Sendable {
    public var payload: ArraySlice<UInt8>
    public var source: SocketAddress
    public var group: IPAddress?
    public var interface: Int32?
    public var kernelTimestamp: Int64?
    /// SO_RXQ_OVFL: cumulative drops of this socket, when the kernel reported it.
    public var droppedTotal: UInt32?
  }

  /// Wraps recvmsg(2) for one datagram; nil when none is waiting.
  public func receive(into buffer: inout [UInt8], control: inout [UInt8]) throws(SystemError) -> Datagram? {
    guard
      let (count, storage, controlLength) = try ControlMessages.receive(socket.fileDescriptor, into: &buffer, control: &control, flags: 0)
    else { return nil }
    guard let source = SocketAddress(storage: storage) else { return nil }
    var datagram = Datagram(payload: buffer[0..<min(count, buffer.count)], source: source)
    ControlMessages.walk(control, length: controlLength) { level, type, data in
      switch (level, type) {
      case (SOL_SOCKET, SO_TIMESTAMPNS) where data.count >= MemoryLayout<timespec>.size:
        let time = data.loadUnaligned(as: timespec.self)
        datagram.kernelTimestamp = Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
      case (SOL_SOCKET, MulticastSocket.socketRXQueueOverflow) where data.count >= 4:
        datagram.droppedTotal = data.loadUnaligned(as: UInt32.self)
      case (Int32(IPPROTO_IP), IP_PKTINFO) where data.count >= 12:
        // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }: addr is the
        // header's destination, the group.
        datagram.interface = data.loadUnaligned(as: Int32.self)
        datagram.group = .v4(UInt32(bigEndian: data.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
      case (Int32(IPPROTO_IPV6), MulticastSocket.ipv6PacketInfo) where data.count >= 20:
        // struct in6_pktinfo { in6_addr addr; int ifindex; }
        datagram.group = .v6(IPv6Bytes(Array(data[0..<16])), zone: nil)
        datagram.interface = data.loadUnaligned(fromByteOffset: 16, as: Int32.self)
      default:
        break
      }
    }
    return datagram
  }
}

/// Network interfaces by name.
public enum NetworkInterface {
  /// if_nametoindex(3): the index, or nil when no interface has that name (now).
  public static func index(of name: String) -> UInt32? {
    let index = if_nametoindex(name)
    return index == 0 ? nil : index
  }
}
