@preconcurrency import Glibc
import Logging
import Synchronization

/// The ICMP sockets of one engine's loop, opened on first use and shared by every target
/// whose probes need the same options, with the one rule for `socket: auto`: a datagram
/// socket, unless the host refuses it to our group (EACCES from
/// `net.ipv4.ping_group_range`), then raw — decided once per family and remembered.
///
/// A socket that cannot be opened is tried again after a minute, counted in
/// `netprobe_ping_socket_errors_total` each time, and logged once with the privilege to
/// grant. Confined to its loop's thread.
struct ICMPSocketPool {
  struct Key: Hashable {
    var family: IPAddress.Family
    var kind: ICMPSocketKind
    var options: ICMPSocketOptions
  }

  /// A socket, or why there is none.
  enum Lookup {
    /// `opened`: new this call, so the loop should watch it.
    case ready(ICMPSocket, opened: Bool)
    case unavailable(SystemError)
  }

  /// How long a socket that failed to open is left before the next try.
  static let retryNanoseconds: Int64 = 60_000_000_000

  private let logger: Logger
  private let errors: ProbeSocketErrors
  /// Run on every new socket before it is used (the tracer asks for the error queue).
  private let prepare: (ICMPSocket) throws(SystemError) -> Void
  private var sockets: [Key: ICMPSocket] = [:]
  private var failures: [Key: (error: SystemError, retryAt: Int64)] = [:]
  /// The datagram-or-raw decision of `socket: auto`, per family.
  private var autoKinds: [IPAddress.Family: ICMPSocketKind] = [:]
  private var loggedFallback: Set<IPAddress.Family> = []

  init(logger: Logger, errors: ProbeSocketErrors, prepare: @escaping (ICMPSocket) throws(SystemError) -> Void = { _ in }) {
    self.logger = logger
    self.errors = errors
    self.prepare = prepare
  }

  /// The kind of socket `mode` means for `family` now.
  func kind(for mode: SocketMode, family: IPAddress.Family) -> ICMPSocketKind {
    switch mode {
    case .dgram: .dgram
    case .raw: .raw
    case .auto: autoKinds[family] ?? .dgram
    }
  }

  /// The socket for probes to `family` with `options`, opening it if needed.
  mutating func socket(family: IPAddress.Family, mode: SocketMode, options: ICMPSocketOptions, now: Int64) -> Lookup {
    var key = Key(family: family, kind: kind(for: mode, family: family), options: options)
    if let socket = sockets[key] { return .ready(socket, opened: false) }
    if let failure = failures[key], failure.retryAt > now { return .unavailable(failure.error) }
    switch open(key) {
    case .success(let socket):
      if mode == .auto && autoKinds[family] == nil { autoKinds[family] = key.kind }
      return .ready(socket, opened: true)
    case .failure(let error):
      guard mode == .auto && key.kind == .dgram && error.errno == Errno.accessDenied.rawValue else {
        failed(key, error, auto: false, now: now)
        return .unavailable(error)
      }
      if loggedFallback.insert(family).inserted {
        logger.info(
          "datagram ICMP sockets are not allowed for this group (net.ipv4.ping_group_range); using raw sockets",
          metadata: ["family": "\(family.rawValue)"])
      }
      autoKinds[family] = .raw
      key.kind = .raw
      if let socket = sockets[key] { return .ready(socket, opened: false) }
      switch open(key) {
      case .success(let socket):
        return .ready(socket, opened: true)
      case .failure(let error):
        failed(key, error, auto: true, now: now)
        // Neither kind opens: when the retry comes round, try datagram first again, so
        // that granting ping_group_range (as the log advises) works without a restart.
        autoKinds[family] = nil
        key.kind = .dgram
        failures[key] = failures[Key(family: family, kind: .raw, options: key.options)]
        return .unavailable(error)
      }
    }
  }

  /// Forgets `socket`; it closes with its last reference.
  mutating func remove(_ socket: ICMPSocket) {
    if let key = sockets.first(where: { $0.value === socket })?.key { sockets[key] = nil }
  }

  private mutating func open(_ key: Key) -> Result<ICMPSocket, SystemError> {
    do {
      let socket = try ICMPSocket(family: key.family, kind: key.kind, options: key.options)
      try prepare(socket)
      sockets[key] = socket
      failures[key] = nil
      return .success(socket)
    } catch {
      return .failure(error)
    }
  }

  /// Counts a socket that cannot be opened, and logs it the first time, with the privilege
  /// to grant.
  private mutating func failed(_ key: Key, _ error: SystemError, auto: Bool, now: Int64) {
    let firstTime = failures[key] == nil
    failures[key] = (error, now + Self.retryNanoseconds)
    errors.record(ProbeSocketErrors.Key(family: key.family, kind: key.kind, errno: Errno(rawValue: error.errno)))
    guard firstTime else { return }
    logger.error(
      "cannot open an ICMP socket; targets that need it are not probed",
      metadata: [
        "family": "\(key.family.rawValue)", "socket": "\(key.kind.rawValue)", "error": "\(error)",
        "fix": "\(PrivilegeAdvice.text(kind: key.kind, errno: Errno(rawValue: error.errno), auto: auto))",
      ])
  }
}

/// ICMP sockets that would not open, by family, kind and errno: both probe engines count
/// here, and the ping engine's collector renders it.
public final class ProbeSocketErrors: Sendable {
  struct Key: Hashable, Comparable {
    var family: IPAddress.Family
    var kind: ICMPSocketKind
    var errno: Errno

    static func < (a: Key, b: Key) -> Bool {
      (a.family.rawValue, a.kind.rawValue, a.errno.name) < (b.family.rawValue, b.kind.rawValue, b.errno.name)
    }
  }

  private let counts = Mutex<[Key: UInt64]>([:])

  public init() {}

  func record(_ key: Key) {
    counts.withLock { $0[key, default: 0] += 1 }
  }

  /// The counts so far, in a stable order.
  func snapshot() -> [(key: Key, count: UInt64)] {
    counts.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
  }
}

/// What to tell an operator when an ICMP socket cannot be opened.
enum PrivilegeAdvice {
  static func text(kind: ICMPSocketKind, errno: Errno, auto: Bool) -> String {
    switch (kind, errno) {
    case (.dgram, .accessDenied):
      return
        "datagram ICMP sockets need our group in net.ipv4.ping_group_range: sysctl -w net.ipv4.ping_group_range='0 2147483647' (or set socket: raw and grant CAP_NET_RAW)"
    case (.raw, .notPermitted), (.raw, .accessDenied):
      let prefix = auto ? "datagram ICMP is not allowed for our group and " : ""
      return prefix
        + "raw ICMP sockets need CAP_NET_RAW: setcap cap_net_raw+ep /path/to/netprobe_exporter, or AmbientCapabilities=CAP_NET_RAW in the systemd unit (or allow datagram ICMP with sysctl -w net.ipv4.ping_group_range='0 2147483647')"
    case (_, .addressFamilyNotSupported), (_, .protocolNotSupported):
      return "this kernel has no \(kind.rawValue) ICMP sockets for this family (is IPv6 disabled?)"
    default:
      return "see the error; the interface or source address may not exist"
    }
  }
}

extension ProbeOptions {
  /// The socket options a target's probes need; targets that share them share a socket.
  var socketOptions: ICMPSocketOptions {
    ICMPSocketOptions(ttl: ttl, tos: tos, dontFragment: dontFragment, source: source, interface: interface)
  }
}
