@preconcurrency import Glibc
import CNetShims

/// The kind of ICMP socket: unprivileged "ping" datagram sockets, or raw sockets.
public enum ICMPSocketKind: String, Sendable, Hashable {
  /// `SOCK_DGRAM` + `IPPROTO_ICMP(V6)`: allowed when `net.ipv4.ping_group_range` holds our
  /// group; the kernel picks the identifier and delivers only replies to it.
  case dgram
  /// `SOCK_RAW`: needs CAP_NET_RAW; sees every ICMP message of the host (filtered in the
  /// kernel to the types we read).
  case raw
}

/// Per-socket options of the probes sent on it: the things that cannot vary per packet
/// on a shared socket, so targets that differ in them get sockets of their own.
public struct ICMPSocketOptions: Sendable, Hashable {
  public var ttl: Int
  public var tos: Int
  public var dontFragment: Bool
  public var source: IPAddress?
  public var interface: String?

  public init(ttl: Int = 64, tos: Int = 0, dontFragment: Bool = false, source: IPAddress? = nil, interface: String? = nil) {
    self.ttl = ttl
    self.tos = tos
    self.dontFragment = dontFragment
    self.source = source
    self.interface = interface
  }
}

/// One datagram read from an ICMP socket.
public struct ReceivedICMP: Sendable {
  /// The ICMP message (after the IPv4 header on raw IPv4 sockets, which is stripped).
  public var message: ArraySlice<UInt8>
  public var source: IPAddress
  /// The kernel's receive time (SO_TIMESTAMPNS, CLOCK_REALTIME), in ns since the epoch.
  public var kernelTimestamp: Int64?
  /// The reply's TTL / hop limit.
  public var ttl: Int?
}

/// An ICMP or ICMPv6 socket, non-blocking, with kernel receive timestamps and the reply TTL.
public final class ICMPSocket: Sendable {
  public let family: IPAddress.Family
  public let kind: ICMPSocketKind
  private let socket: Socket

  public var fileDescriptor: Int32 { socket.fileDescriptor }

  /// Wraps `socket(2)` and the setsockopt(2) calls the probes need.
  ///
  /// - Throws: `SystemError` from `socket` (EACCES: datagram ICMP not allowed for our group;
  ///   EPERM: raw sockets without CAP_NET_RAW) or from an option.
  public init(family: IPAddress.Family, kind: ICMPSocketKind, options: ICMPSocketOptions) throws(SystemError) {
    self.family = family
    self.kind = kind
    let domain = family == .ip4 ? AF_INET : AF_INET6
    let type = kind == .dgram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_RAW.rawValue)
    let proto = family == .ip4 ? Int32(IPPROTO_ICMP) : Int32(IPPROTO_ICMPV6)
    socket = try Socket(family: domain, type: type | Int32(SOCK_NONBLOCK.rawValue), protocol: proto)
    try socket.setOption(level: SOL_SOCKET, name: SO_TIMESTAMPNS, value: Int32(1), label: "SO_TIMESTAMPNS")
    try socket.setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: Int32(4 << 20), label: "SO_RCVBUF")
    switch family {
    case .ip4:
      try socket.setOption(level: Int32(IPPROTO_IP), name: IP_RECVTTL, value: Int32(1), label: "IP_RECVTTL")
      if kind == .raw {
        // ICMP_FILTER: a bit set blocks that type. Pass echo reply, unreachable, time exceeded.
        let pass: UInt32 = 1 << 0 | 1 << 3 | 1 << 11
        try socket.setOption(level: Int32(IPPROTO_RAW), name: 1, value: ~pass, label: "ICMP_FILTER")
      }
    case .ip6:
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_RECVHOPLIMIT, value: Int32(1), label: "IPV6_RECVHOPLIMIT")
      if kind == .raw {
        // ICMP6_FILTER (struct icmp6_filter): a set bit blocks the type. Pass echo reply,
        // destination unreachable, packet too big and time exceeded.
        var words = [UInt32](repeating: ~0, count: 8)
        for type in [ICMPType.echoReplyV6, ICMPType.destinationUnreachableV6, ICMPType.packetTooBigV6, ICMPType.timeExceededV6] {
          words[Int(type >> 5)] &= ~(1 << UInt32(type & 31))
        }
        let filter = (words[0], words[1], words[2], words[3], words[4], words[5], words[6], words[7])
        try socket.setOption(level: Int32(IPPROTO_ICMPV6), name: 1, value: filter, label: "ICMP6_FILTER")
      }
    }
    try socket.applyProbeOptions(options, family: family)
    if let source = options.source {
      try socket.bind(to: SocketAddress(source, port: 0))
    }
  }

  /// Wraps `sendto(2)`. Returns false when the socket buffer is full (EAGAIN).
  public func send(_ bytes: [UInt8], to address: IPAddress) throws(SystemError) -> Bool {
    try socket.sendDatagram(bytes, to: SocketAddress(address, port: 0))
  }

  /// Wraps `setsockopt(IP_TTL / IPV6_UNICAST_HOPS)`: the path tracer sets it before each
  /// probe on its own sockets.
  public func setTTL(_ ttl: Int) throws(SystemError) {
    try socket.setUnicastHopLimit(ttl, family: family)
  }

  /// Wraps `setsockopt(IP_RECVERR / IPV6_RECVERR)`: on datagram sockets, ICMP errors about
  /// our probes (Time Exceeded, Unreachable) are queued on the socket's error queue
  /// instead of being delivered as data.
  public func enableErrorQueue() throws(SystemError) {
    switch family {
    case .ip4: try socket.setOption(level: Int32(IPPROTO_IP), name: IP_RECVERR, value: Int32(1), label: "IP_RECVERR")
    case .ip6: try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_RECVERR, value: Int32(1), label: "IPV6_RECVERR")
    }
  }

  /// Wraps `getsockopt(SO_ERROR)` (see `Socket.takePendingError`). A datagram ICMP socket
  /// with IP_RECVERR sets its pending error with every ICMP error, also one the kernel could
  /// not queue (the receive buffer full): POLLERR then stays up over an empty error queue.
  public func takePendingError() -> Int32? { socket.takePendingError() }

  /// Wraps `recvmsg(2)` for one datagram, reading the timestamp and TTL control messages.
  /// Returns nil when nothing is waiting. `buffer` receives the bytes; the result slices it.
  public func receive(into buffer: inout [UInt8], control: inout [UInt8]) throws(SystemError) -> ReceivedICMP? {
    guard
      let (count, storage, controlLength) = try ControlMessages.receive(socket.fileDescriptor, into: &buffer, control: &control, flags: 0)
    else { return nil }
    guard let source = SocketAddress(storage: storage)?.ip else { return nil }
    var timestamp: Int64?
    var ttl: Int?
    ControlMessages.walk(control, length: controlLength) { level, type, data in
      if level == SOL_SOCKET && type == SO_TIMESTAMPNS, data.count >= MemoryLayout<timespec>.size {
        let time = data.loadUnaligned(as: timespec.self)
        timestamp = Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
      } else if (level == Int32(IPPROTO_IP) && type == IP_TTL) || (level == Int32(IPPROTO_IPV6) && type == IPV6_HOPLIMIT),
        data.count >= 4
      {
        ttl = Int(data.loadUnaligned(as: Int32.self))
      }
    }
    var message = buffer[0..<min(count, buffer.count)]
    if family == .ip4 && kind == .raw {
      // Raw IPv4 reads start with the IP header: take the TTL from it and skip it.
      guard let header = IPv4Header.decode(message) else {
        return ReceivedICMP(message: [], source: source, kernelTimestamp: timestamp, ttl: ttl)
      }
      ttl = Int(header.ttl)
      message = message.dropFirst(header.headerLength)
    }
    return ReceivedICMP(message: message, source: source, kernelTimestamp: timestamp, ttl: ttl)
  }

  /// One entry of the error queue: the probe as we sent it, and what the network said.
  public struct QueuedError: Sendable {
    /// Our original ICMP message (the kernel put its own identifier in it).
    public var original: ArraySlice<UInt8>
    /// The original's destination.
    public var destination: IPAddress?
    public var error: ExtendedError
    public var kernelTimestamp: Int64?
  }

  /// Wraps `recvmsg(2, MSG_ERRQUEUE)`. Nil when the queue is empty.
  public func receiveError(into buffer: inout [UInt8], control: inout [UInt8]) throws(SystemError) -> QueuedError? {
    guard let entry = try ControlMessages.receiveErrorQueue(socket.fileDescriptor, into: &buffer, control: &control) else { return nil }
    return QueuedError(
      original: entry.quoted, destination: entry.destination?.ip, error: entry.error, kernelTimestamp: entry.kernelTimestamp)
  }
}

/// Walks the control messages recvmsg(2) filled, through the CMSG_* macros of the C shim.
enum ControlMessages {
  /// Wraps recvmsg(2) on a non-blocking socket: the datagram into `buffer`, its ancillary
  /// data into `control`. Nil when nothing is waiting (EAGAIN).
  static func receive(_ fd: Int32, into buffer: inout [UInt8], control: inout [UInt8], flags: Int32) throws(SystemError)
    -> (count: Int, source: sockaddr_storage, controlLength: Int)?
  {
    var storage = sockaddr_storage()
    var count = 0
    var controlLength = 0
    let error: Int32 = buffer.withUnsafeMutableBytes { bytes in
      control.withUnsafeMutableBytes { controlBytes in
        withUnsafeMutablePointer(to: &storage) { address in
          var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
          return withUnsafeMutablePointer(to: &vector) { vectorPointer in
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(address)
            message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            message.msg_iov = vectorPointer
            message.msg_iovlen = 1
            message.msg_control = controlBytes.baseAddress
            message.msg_controllen = controlBytes.count
            while true {
              let received = recvmsg(fd, &message, Int32(MSG_DONTWAIT) | flags)
              if received >= 0 {
                count = received
                controlLength = message.msg_controllen
                return 0
              }
              if errno != EINTR { return errno }
            }
          }
        }
      }
    }
    if error == EAGAIN { return nil }
    if error != 0 { throw SystemError("recvmsg", errno: error) }
    return (count, storage, controlLength)
  }

  /// Reads `control` in place: the CMSG_* macros take a mutable msghdr but only read
  /// through it, so the buffer is not copied per datagram.
  /// Wraps recvmsg(2, MSG_ERRQUEUE): one entry of the socket's error queue — the bytes of
  /// the probe the answer quoted, the probe's destination, the `sock_extended_err` and the
  /// kernel's receive time. Nil when the queue is empty, or for an entry without a
  /// `sock_extended_err` (none is expected).
  static func receiveErrorQueue(_ fd: Int32, into buffer: inout [UInt8], control: inout [UInt8]) throws(SystemError)
    -> (quoted: ArraySlice<UInt8>, destination: SocketAddress?, error: ExtendedError, kernelTimestamp: Int64?)?
  {
    guard let (count, storage, controlLength) = try receive(fd, into: &buffer, control: &control, flags: Int32(MSG_ERRQUEUE)) else {
      return nil
    }
    var extended: ExtendedError?
    var timestamp: Int64?
    walk(control, length: controlLength) { level, type, data in
      if (level == Int32(IPPROTO_IP) && type == IP_RECVERR) || (level == Int32(IPPROTO_IPV6) && type == IPV6_RECVERR) {
        extended = ExtendedError.decode(Array(data))
      } else if level == SOL_SOCKET && type == SO_TIMESTAMPNS, data.count >= MemoryLayout<timespec>.size {
        let time = data.loadUnaligned(as: timespec.self)
        timestamp = Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
      }
    }
    guard let extended else { return nil }
    return (buffer[0..<min(count, buffer.count)], SocketAddress(storage: storage), extended, timestamp)
  }

  static func walk(_ control: [UInt8], length: Int, _ visit: (Int32, Int32, UnsafeRawBufferPointer) -> Void) {
    guard length > 0 else { return }
    control.withUnsafeBytes { bytes in
      var header = msghdr()
      header.msg_control = UnsafeMutableRawPointer(mutating: bytes.baseAddress)
      header.msg_controllen = min(length, bytes.count)
      var cursor = cns_cmsg_firsthdr(&header)
      while let message = cursor {
        let dataLength = message.pointee.cmsg_len - cns_cmsg_len(0)
        if let data = cns_cmsg_data(message), dataLength >= 0 {
          visit(message.pointee.cmsg_level, message.pointee.cmsg_type, UnsafeRawBufferPointer(start: data, count: dataLength))
        }
        cursor = cns_cmsg_nxthdr(&header, message)
      }
    }
  }
}

extension Socket {
  /// The options every probe socket takes from its target, ICMP or UDP alike: hop limit,
  /// traffic class, whether to forbid fragmentation, and the interface it is bound to.
  func applyProbeOptions(_ options: ICMPSocketOptions, family: IPAddress.Family) throws(SystemError) {
    try setUnicastHopLimit(options.ttl, family: family)
    switch family {
    case .ip4:
      if options.tos != 0 {
        try setOption(level: Int32(IPPROTO_IP), name: IP_TOS, value: Int32(options.tos), label: "IP_TOS")
      }
      let discover = options.dontFragment ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT
      try setOption(level: Int32(IPPROTO_IP), name: IP_MTU_DISCOVER, value: Int32(discover), label: "IP_MTU_DISCOVER")
    case .ip6:
      if options.tos != 0 {
        try setOption(level: Int32(IPPROTO_IPV6), name: IPV6_TCLASS, value: Int32(options.tos), label: "IPV6_TCLASS")
      }
      let discover = options.dontFragment ? IPV6_PMTUDISC_DO : IPV6_PMTUDISC_DONT
      try setOption(level: Int32(IPPROTO_IPV6), name: IPV6_MTU_DISCOVER, value: Int32(discover), label: "IPV6_MTU_DISCOVER")
    }
    if let interface = options.interface {
      let fd = fileDescriptor
      let name = Array(interface.utf8CString)
      _ = try retryingInterrupts("setsockopt(SO_BINDTODEVICE)") {
        name.withUnsafeBufferPointer { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0.baseAddress, socklen_t($0.count)) }
      }
    }
  }
}
