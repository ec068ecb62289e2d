@preconcurrency import Glibc
import CNetShims
import Synchronization

/// A file descriptor for a socket, owned: closed exactly once, by `close()` or on deinit.
///
/// Every socket call of the agent goes through this type (or its siblings in `System/`), so
/// EINTR is retried and failures carry the name of the call, as swift-system does.
public final class Socket: Sendable {
  /// The descriptor; -1 once closed.
  private let descriptor: Atomic<Int32>

  /// The descriptor, for poll sets. Valid while the socket is open.
  public var fileDescriptor: Int32 { descriptor.load(ordering: .acquiring) }

  /// Takes ownership of an open descriptor.
  public init(owning fd: Int32) {
    descriptor = Atomic(fd)
  }

  /// Wraps `socket(2)`; descriptors are always close-on-exec.
  public convenience init(family: Int32, type: Int32, protocol proto: Int32 = 0) throws(SystemError) {
    let fd = try retryingInterrupts("socket") { Glibc.socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto) }
    self.init(owning: fd)
  }

  deinit { close() }

  /// Wraps `close(2)`. Idempotent; EINTR is not retried, as Linux has already freed the fd.
  public func close() {
    let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
    if fd >= 0 { _ = Glibc.close(fd) }
  }

  /// Wraps `getsockopt(SO_ERROR)`: the socket's pending error, which reading it clears.
  /// Nil when there is none (or the call fails). A pending error keeps poll(2) reporting
  /// POLLERR, so a loop that waits on the socket must read it.
  public func takePendingError() -> Int32? {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fileDescriptor, SOL_SOCKET, SO_ERROR, &value, &length) == 0, value != 0 else { return nil }
    return value
  }

  /// Wraps `setsockopt(2)` for any plain value type.
  public func setOption<T: BitwiseCopyable>(level: Int32, name: Int32, value: T, label: String) throws(SystemError) {
    let fd = fileDescriptor
    _ = try withUnsafeBytes(of: value) { bytes throws(SystemError) in
      try retryingInterrupts("setsockopt(\(label))") {
        setsockopt(fd, level, name, bytes.baseAddress, socklen_t(bytes.count))
      }
    }
  }

  /// Wraps `bind(2)`.
  public func bind(to address: SocketAddress) throws(SystemError) {
    let fd = fileDescriptor
    try address.withSockAddr { (sa, length) throws(SystemError) in
      _ = try retryingInterrupts("bind") { Glibc.bind(fd, sa, length) }
    }
  }

  /// Wraps `connect(2)`; for a datagram socket it fixes the destination of `send`.
  public func connect(to address: SocketAddress) throws(SystemError) {
    let fd = fileDescriptor
    try address.withSockAddr { (pointer, length) throws(SystemError) in
      _ = try retryingInterrupts("connect") { Glibc.connect(fd, pointer, length) }
    }
  }

  /// Wraps `listen(2)`.
  public func listen(backlog: Int32) throws(SystemError) {
    let fd = fileDescriptor
    _ = try retryingInterrupts("listen") { Glibc.listen(fd, backlog) }
  }

  /// Wraps `getsockname(2)`: the port the kernel picked for a bind to port 0.
  public func localAddress() throws(SystemError) -> SocketAddress {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let fd = fileDescriptor
    _ = try withUnsafeMutablePointer(to: &storage) { pointer throws(SystemError) in
      try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SystemError) in
        try retryingInterrupts("getsockname") { getsockname(fd, sa, &length) }
      }
    }
    guard let address = SocketAddress(storage: storage) else { throw SystemError("getsockname", errno: EAFNOSUPPORT) }
    return address
  }

  /// Wraps `accept4(2)` with SOCK_CLOEXEC | SOCK_NONBLOCK. Returns nil when no connection is
  /// waiting (EAGAIN) or the peer already gave up (ECONNABORTED).
  public func accept() throws(SystemError) -> Socket? {
    try acceptWithPeer()?.socket
  }

  /// Wraps `accept4(2)` with SOCK_CLOEXEC | SOCK_NONBLOCK, and returns the peer's address
  /// too (nil for a family `SocketAddress` does not model), for per-client limits. Nil when
  /// no connection is waiting (EAGAIN) or the peer already gave up (ECONNABORTED);
  /// EMFILE and ENFILE are thrown like any other failure.
  public func acceptWithPeer() throws(SystemError) -> (socket: Socket, peer: SocketAddress?)? {
    let fd = fileDescriptor
    let flags = Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    var storage = sockaddr_storage()
    while true {
      var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
      let accepted = withUnsafeMutablePointer(to: &storage) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { cns_accept4(fd, $0, &length, flags) }
      }
      if accepted >= 0 { return (Socket(owning: accepted), SocketAddress(storage: storage)) }
      switch errno {
      case EINTR: continue
      case EAGAIN, ECONNABORTED: return nil
      case let code: throw SystemError("accept4", errno: code)
      }
    }
  }

  /// Wraps `setsockopt(SOL_SOCKET, SO_SNDBUF)`: caps the kernel's send queue for this socket
  /// (the kernel doubles the value for its bookkeeping and stops auto-tuning it), so a peer
  /// that never reads holds at most that much kernel memory.
  public func setSendBufferSize(_ bytes: Int) throws(SystemError) {
    try setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: Int32(clamping: bytes), label: "SO_SNDBUF")
  }

  /// Wraps `setsockopt(SOL_SOCKET, SO_RCVBUF)`: caps the kernel's receive queue (doubled
  /// by the kernel, auto-tuning off), so a client cannot park megabytes there.
  public func setReceiveBufferSize(_ bytes: Int) throws(SystemError) {
    try setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: Int32(clamping: bytes), label: "SO_RCVBUF")
  }

  /// Wraps `ioctl(SIOCOUTQ)` (TIOCOUTQ): bytes written to this TCP socket that the peer has
  /// not acknowledged yet, still held in kernel memory.
  public func unacknowledgedOutputBytes() throws(SystemError) -> Int {
    var bytes: Int32 = 0
    let fd = fileDescriptor
    _ = try retryingInterrupts("ioctl(SIOCOUTQ)") { cns_socket_outq(fd, &bytes) }
    return Int(bytes)
  }

  /// Wraps `setsockopt(SO_LINGER, {on, 0})`: the next `close()` resets the connection and
  /// discards what the kernel still queues for it, instead of keeping an orphaned socket
  /// and its unread data for up to a couple of minutes of retransmissions.
  public func setResetOnClose() throws(SystemError) {
    try setOption(level: SOL_SOCKET, name: SO_LINGER, value: linger(l_onoff: 1, l_linger: 0), label: "SO_LINGER")
  }

  /// Wraps `setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)`: small writes go out at once instead
  /// of waiting for the peer's ACK of the previous segment (Nagle's algorithm).
  public func setNoDelay() throws(SystemError) {
    if cns_set_tcp_nodelay(fileDescriptor) != 0 { throw SystemError("setsockopt(TCP_NODELAY)", errno: errno) }
  }

  /// Wraps `fcntl(F_SETFL, O_NONBLOCK)`.
  public func setNonBlocking() throws(SystemError) {
    let fd = fileDescriptor
    let flags = try retryingInterrupts("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
    _ = try retryingInterrupts("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
  }

  /// Result of a non-blocking read or write.
  public enum IOResult: Equatable, Sendable {
    case bytes(Int)
    case wouldBlock
    case endOfStream
  }

  /// Wraps `recv(2)` on a non-blocking socket.
  public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult {
    let fd = fileDescriptor
    while true {
      let count = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
      if count > 0 { return .bytes(count) }
      if count == 0 { return .endOfStream }
      switch errno {
      case EINTR: continue
      case EAGAIN: return .wouldBlock
      case let code: throw SystemError("recv", errno: code)
      }
    }
  }

  /// Wraps `send(2)` with MSG_NOSIGNAL (a vanished peer is an error, never a SIGPIPE).
  ///
  /// `more`: more of the same message follows (MSG_MORE), so the kernel holds a partial
  /// segment back until the last part instead of sending a small packet per part.
  public func send(_ bytes: UnsafeRawBufferPointer, more: Bool = false) throws(SystemError) -> IOResult {
    let fd = fileDescriptor
    let flags = Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT) | (more ? Int32(MSG_MORE) : 0)
    while true {
      let count = Glibc.send(fd, bytes.baseAddress, bytes.count, flags)
      if count >= 0 { return .bytes(count) }
      switch errno {
      case EINTR: continue
      case EAGAIN: return .wouldBlock
      case let code: throw SystemError("send", errno: code)
      }
    }
  }

  /// Wraps `sendto(2)` of one datagram, without blocking and with MSG_NOSIGNAL. Returns
  /// false when the socket buffer is full (EAGAIN): the datagram was not sent, and the
  /// caller decides what an unsent probe is.
  public func sendDatagram(_ bytes: [UInt8], to destination: SocketAddress) throws(SystemError) -> Bool {
    let fd = fileDescriptor
    return try destination.withSockAddr { (sa, length) throws(SystemError) in
      while true {
        let sent = bytes.withUnsafeBytes {
          Glibc.sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), sa, length)
        }
        if sent >= 0 { return true }
        switch errno {
        case EINTR: continue
        case EAGAIN: return false
        case let code: throw SystemError("sendto", errno: code)
        }
      }
    }
  }

  /// Wraps `setsockopt(IP_TTL / IPV6_UNICAST_HOPS)`: the hop limit of the unicast
  /// datagrams sent from now on, as the path tracer sets it before each probe.
  public func setUnicastHopLimit(_ hops: Int, family: IPAddress.Family) throws(SystemError) {
    switch family {
    case .ip4: try setOption(level: Int32(IPPROTO_IP), name: IP_TTL, value: Int32(hops), label: "IP_TTL")
    case .ip6: try setOption(level: Int32(IPPROTO_IPV6), name: IPV6_UNICAST_HOPS, value: Int32(hops), label: "IPV6_UNICAST_HOPS")
    }
  }

  /// Wraps `shutdown(2)` for writing: tells the peer the response is complete.
  public func shutdownWrite() {
    _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_WR))
  }

  /// Waits with `poll(2)` until this socket is writable or `timeoutMilliseconds` pass.
  public func waitWritable(timeoutMilliseconds: Int32) throws(SystemError) -> Bool {
    var entry = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
    let ready = try retryingInterrupts("poll") { Glibc.poll(&entry, 1, timeoutMilliseconds) }
    return ready > 0
  }
}

/// `poll(2)` over many descriptors, the event loop's one blocking call.
enum Poller {
  /// Waits for events; returns how many entries have `revents` set. EINTR counts as zero
  /// ready, so a signal only shortens the wait.
  static func poll(_ entries: inout [pollfd], timeoutMilliseconds: Int32) throws(SystemError) -> Int {
    let count = entries.withUnsafeMutableBufferPointer { buffer in
      Glibc.poll(buffer.baseAddress, nfds_t(buffer.count), timeoutMilliseconds)
    }
    if count >= 0 { return Int(count) }
    if errno == EINTR { return 0 }
    throw SystemError("poll", errno: errno)
  }

  /// The same with a timeout in nanoseconds (ppoll(2)), for pacing finer than poll's
  /// milliseconds.
  static func poll(_ entries: inout [pollfd], timeoutNanoseconds: Int64) throws(SystemError) -> Int {
    let count = entries.withUnsafeMutableBufferPointer { buffer in
      cns_ppoll(buffer.baseAddress, UInt(buffer.count), max(0, timeoutNanoseconds))
    }
    if count >= 0 { return Int(count) }
    if errno == EINTR { return 0 }
    throw SystemError("ppoll", errno: errno)
  }
}

/// An eventfd(2) that wakes a poll loop from another thread.
public final class WakeupEvent: Sendable {
  private let socket: Socket

  public init() throws(SystemError) {
    let fd = try retryingInterrupts("eventfd") { cns_eventfd_nonblocking() }
    socket = Socket(owning: fd)
  }

  public var fileDescriptor: Int32 { socket.fileDescriptor }

  /// Makes the descriptor readable; cheap and safe from any thread.
  public func signal() {
    var one: UInt64 = 1
    _ = write(socket.fileDescriptor, &one, 8)
  }

  /// Consumes pending signals so that poll blocks again.
  public func drain() {
    var value: UInt64 = 0
    _ = read(socket.fileDescriptor, &value, 8)
  }
}
