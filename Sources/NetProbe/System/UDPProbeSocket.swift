@preconcurrency import Glibc
import CNetShims

/// An unprivileged UDP socket for the path tracer's UDP probes (traceroute's default
/// method): non-blocking, bound to one source port for its life so that a flow's 5-tuple
/// stays fixed, and with IP_RECVERR / IPV6_RECVERR so that the Time Exceeded and Port
/// Unreachable answers come back on its error queue — no CAP_NET_RAW and no
/// ping_group_range needed.
public final class UDPProbeSocket: Sendable {
  public let family: IPAddress.Family
  /// The source port every probe sent on this socket carries (chosen by the kernel).
  public let sourcePort: UInt16
  private let socket: Socket

  public var fileDescriptor: Int32 { socket.fileDescriptor }

  /// Wraps `socket(2)`, the setsockopt(2) calls the probes need (TTL, TOS, DF, error queue,
  /// timestamps, device) and `bind(2)` to port 0, so the kernel picks the source port now
  /// rather than at the first send.
  ///
  /// - Throws: `SystemError` from `socket`, an option, or `bind` (the source address is not
  ///   the host's, or the interface does not exist).
  public init(family: IPAddress.Family, options: ICMPSocketOptions) throws(SystemError) {
    self.family = family
    let domain = family == .ip4 ? AF_INET : AF_INET6
    socket = try Socket(family: domain, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), protocol: Int32(IPPROTO_UDP))
    try socket.setOption(level: SOL_SOCKET, name: SO_TIMESTAMPNS, value: Int32(1), label: "SO_TIMESTAMPNS")
    switch family {
    case .ip4: try socket.setOption(level: Int32(IPPROTO_IP), name: IP_RECVERR, value: Int32(1), label: "IP_RECVERR")
    case .ip6: try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_RECVERR, value: Int32(1), label: "IPV6_RECVERR")
    }
    try socket.applyProbeOptions(options, family: family)
    let unspecified: IPAddress = family == .ip4 ? .v4(0) : .v6(IPv6Bytes([UInt8](repeating: 0, count: 16)), zone: nil)
    try socket.bind(to: SocketAddress(options.source ?? unspecified, port: 0))
    sourcePort = try socket.localAddress().port
  }

  /// Wraps `sendto(2)`. Returns false when the socket buffer is full (EAGAIN).
  ///
  /// - Throws: `SystemError`; on this socket also the pending error an earlier probe's
  ///   answer left (EHOSTUNREACH for a Time Exceeded, ECONNREFUSED for a Port Unreachable).
  public func send(_ bytes: [UInt8], to destination: SocketAddress) throws(SystemError) -> Bool {
    try socket.sendDatagram(bytes, to: destination)
  }

  /// Wraps `setsockopt(IP_TTL / IPV6_UNICAST_HOPS)`, set before each probe.
  public func setTTL(_ ttl: Int) throws(SystemError) {
    try socket.setUnicastHopLimit(ttl, family: family)
  }

  /// Wraps `getsockopt(SO_ERROR)`: clears the pending error an answer left when nothing
  /// was queued for it (the error queue was full).
  public func takePendingError() -> Int32? { socket.takePendingError() }

  /// Wraps `recvmsg(2)` for one datagram: a UDP answer from a port that is open at the
  /// destination. Returns its source, or nil when nothing is waiting. The bytes are read
  /// into `buffer` and dropped: the tracer does not match data answers (they carry no
  /// quote of the probe).
  public func receiveData(into buffer: inout [UInt8], control: inout [UInt8]) throws(SystemError) -> SocketAddress? {
    guard let (_, storage, _) = try ControlMessages.receive(socket.fileDescriptor, into: &buffer, control: &control, flags: 0)
    else { return nil }
    return SocketAddress(storage: storage)
  }

  /// One entry of the error queue: what the answering router quoted of the probe's UDP
  /// payload (the kernel strips the IP and UDP headers; a router that quotes only 8 bytes
  /// past the IP header leaves it empty), the probe's destination and port, and the answer.
  public struct QueuedError: Sendable {
    public var quotedPayload: ArraySlice<UInt8>
    /// The probe's destination address and destination port.
    public var destination: SocketAddress?
    public var error: ExtendedError
    public var kernelTimestamp: Int64?
  }

  /// Wraps `recvmsg(2, MSG_ERRQUEUE)`. Nil when the queue is empty, or for an entry without
  /// a `sock_extended_err` (none is expected).
  public func receiveError(into buffer: inout [UInt8], control: inout [UInt8]) throws(SystemError) -> QueuedError? {
    guard let entry = try ControlMessages.receiveErrorQueue(socket.fileDescriptor, into: &buffer, control: &control) else { return nil }
    return QueuedError(
      quotedPayload: entry.quoted, destination: entry.destination, error: entry.error, kernelTimestamp: entry.kernelTimestamp)
  }
}
