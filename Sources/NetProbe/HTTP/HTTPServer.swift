@preconcurrency import Glibc
import Dispatch
import FoundationEssentials
public import Logging
import Synchronization

/// Answers requests; the server calls it on a worker thread.
public protocol HTTPHandler: Sendable {
  func respond(to request: HTTPRequest) -> HTTPResponse
  /// The `handler` label of `netprobe_http_requests_total` for this request: a fixed set of
  /// names, never the raw path, so a client cannot grow the label set.
  func handlerLabel(for request: HTTPRequest) -> String
}

/// Limits and timeouts of the HTTP server.
public struct HTTPServerOptions: Sendable {
  /// Connections held at once. A newcomer above it takes the place of the cheapest
  /// connection (see `Admission`); it gets 503 only when every connection is answering.
  public var maxConnections = 512
  /// Connections one client address may hold; 0 for no limit. A client at its limit
  /// displaces its own idle or unfinished connections, never anyone else's.
  public var maxConnectionsPerClient = 32
  /// The deadline for a complete request (and for idling) while the server is under
  /// pressure (see `Admission.underPressure`), instead of `readTimeout`/`idleTimeout`.
  public var pressureReadTimeout: Duration = .seconds(5)
  /// SO_SNDBUF of each connection (the kernel allots twice this); 0 keeps the kernel's
  /// auto-tuning, which lets one slow reader hold megabytes of kernel memory.
  public var sendBufferBytes = 256 << 10
  /// SO_RCVBUF of each connection, enough for the largest request (16 KiB head, 64 KiB
  /// body); 0 keeps auto-tuning, which lets a client that pipelines while its response
  /// is written park megabytes in the kernel's receive queue.
  public var receiveBufferBytes = 96 << 10
  /// Threads that render responses; one of them only builds small responses.
  public var workerThreads = 4
  /// Time from a request's first byte to its complete head and body.
  public var readTimeout: Duration = .seconds(10)
  /// Time a keep-alive connection may wait for its next request.
  public var idleTimeout: Duration = .seconds(60)
  /// Time from a response being ready to the client acknowledging its last byte: a
  /// response still in the process or in the kernel's send queue after it is dropped and
  /// the connection reset, which frees both.
  public var writeTimeout: Duration = .seconds(30)
  /// Bytes of responses being built, waiting for slow readers in the process, or sent but
  /// not yet acknowledged in the kernel's send queues (SIOCOUTQ), past which a new request
  /// is answered 503 instead of rendering one more (a 10,000-target body is about 38 MB,
  /// 4 MB gzipped): memory stays bounded when many clients scrape and never read. One
  /// response is always served, whatever its size.
  public var maxResponseBytesInFlight = 128 << 20
  /// The share of that budget one client address may hold; a client holding nothing is
  /// always served. Without it one client's slow readers took the whole budget and every
  /// other scrape got 503.
  public var maxResponseBytesPerClient = 32 << 20
  /// Time from accepting a TLS connection to the end of its handshake: a client that opens
  /// TLS and stalls is closed like a slow request.
  public var handshakeTimeout: Duration = .seconds(5)

  public init() {}
}

/// A minimal HTTP/1.1 server on Glibc sockets: one thread on the shared event loop
/// (`EventLoop`, named `http-loop`; the protocol logic is `HTTPServerEngine`) reads and
/// writes every connection without blocking, and a small worker pool builds the responses.
///
/// Slow or idle clients cost a buffer in the loop, never a thread, so 50 slowloris
/// connections do not delay a scrape; the loop enforces read, idle and write deadlines.
public final class HTTPServer: Sendable {
  public let localAddress: SocketAddress
  private let context: HTTPServerContext
  private let loop: EventLoop<HTTPServerEngine>
  private let stopping = Atomic<Bool>(false)

  /// Binds and listens at once, so a port already in use fails here with a clear error.
  /// `[::]` (and `:port`, which parses to it) listens on IPv4 too, through v4-mapped
  /// addresses, as Go exporters do; where the kernel has no IPv6 it falls back to 0.0.0.0.
  /// `logger`: where descriptor exhaustion is reported (once per episode); nil for silence.
  /// `security`: TLS (fixed for the server's life), basic auth and headers (replaceable).
  public init(
    address: SocketAddress, handler: any HTTPHandler, options: HTTPServerOptions = HTTPServerOptions(),
    security: WebSecurity? = nil, logger: Logger? = nil
  ) throws(SystemError) {
    var address = address
    let dualStack = address.ip.family == .ip6 && address.ip.isUnspecified
    let socket: Socket
    do {
      socket = try Socket(family: address.addressFamily, type: Int32(SOCK_STREAM.rawValue))
    } catch  where dualStack && error.errno == EAFNOSUPPORT {
      address = SocketAddress(.v4(0), port: address.port)
      socket = try Socket(family: address.addressFamily, type: Int32(SOCK_STREAM.rawValue))
    }
    try socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: Int32(1), label: "SO_REUSEADDR")
    if case .v6 = address.ip {
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: Int32(dualStack ? 0 : 1), label: "IPV6_V6ONLY")
    }
    // Set on the listener, so every accepted connection inherits them (and the receive
    // window is scaled for them from the handshake) without a call per connection.
    if options.sendBufferBytes > 0 { try socket.setSendBufferSize(options.sendBufferBytes) }
    if options.receiveBufferBytes > 0 { try socket.setReceiveBufferSize(options.receiveBufferBytes) }
    try socket.bind(to: address)
    try socket.listen(backlog: 1024)
    try socket.setNonBlocking()
    localAddress = try socket.localAddress()
    let context = HTTPServerContext(
      listener: socket, handler: handler, options: options, workers: WorkerPool(threads: options.workerThreads, name: "http-worker"),
      stats: HTTPServerStats(), logger: logger, security: security)
    self.context = context
    loop = try EventLoop(name: "http-loop", makeEngineOnLoop: { loop in HTTPServerEngine(server: context, loop: loop) })
  }

  /// Starts the event loop thread.
  public func start() {
    loop.start()
  }

  /// Stops accepting, closes every connection and the workers; returns within a second.
  public func stop() {
    guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
    loop.stop(timeout: .milliseconds(600))
    context.workers.shutdown(timeout: .milliseconds(300))
    context.listener.close()
  }

  static let unauthorized = HTTPStatus(401, "Unauthorized")
  static let tooManyRequests = HTTPStatus(429, "Too Many Requests")

  /// 401 with the Basic challenge, for a request without valid credentials.
  static func unauthorizedResponse() -> HTTPResponse {
    var response = HTTPResponse.text(unauthorized, "Unauthorized\n")
    response.headers.append((name: "WWW-Authenticate", value: BasicAuthenticator.challenge))
    return response
  }

  /// Responses above this size are followed by a heap trim (see `Memory`).
  static let trimThreshold = 4 << 20

  /// Responses up to this size are always served: health checks and a small status page must
  /// answer while large scrapes hold the budget.
  static let smallResponseBytes = 64 << 10

  /// The server's own metrics: requests by handler and code, open and rejected connections.
  public var metrics: any MetricsCollector { context.stats }
}

/// Counters of the HTTP server, exposed through the metrics catalogue.
final class HTTPServerStats: MetricsCollector {
  /// The `reason` values of `netprobe_http_evicted_connections_total`.
  static let evictionReasons = ["idle", "incomplete_request", "pressure_timeout", "unread_response"]
  private struct Key: Hashable {
    var handler: String
    var code: Int
  }
  private let requests = Mutex<[Key: UInt64]>([:])
  private let open = Atomic<Int>(0)
  private let rejectedCount = Atomic<UInt64>(0)
  private let evictions = Mutex<[String: UInt64]>([:])
  private let acceptErrors = Mutex<[Int32: UInt64]>([:])
  private let authFailures = Mutex<[String: UInt64]>([:])
  private let handshakeFailures = Mutex<[String: UInt64]>([:])
  /// The `reason` values of `netprobe_http_tls_handshake_failures_total`.
  static let handshakeFailureReasons = ["error", "plain_http", "timeout"]

  func count(handler: String, code: Int) {
    requests.withLock { $0[Key(handler: handler, code: code), default: 0] += 1 }
  }

  func setOpen(_ count: Int) { open.store(count, ordering: .relaxed) }
  func rejected() { rejectedCount.add(1, ordering: .relaxed) }
  func evicted(reason: String) { evictions.withLock { $0[reason, default: 0] += 1 } }
  func acceptFailed(errno: Int32) { acceptErrors.withLock { $0[errno, default: 0] += 1 } }
  func authFailed(reason: String) { authFailures.withLock { $0[reason, default: 0] += 1 } }
  func tlsHandshakeFailed(reason: String) { handshakeFailures.withLock { $0[reason, default: 0] += 1 } }

  func collect(into exposition: inout Exposition) {
    let snapshot = requests.withLock { $0 }
    for (key, value) in snapshot.sorted(by: { ($0.key.handler, $0.key.code) < ($1.key.handler, $1.key.code) }) {
      exposition.add(Catalogue.httpRequests, LabelSet([("handler", key.handler), ("code", String(key.code))]), Double(value))
    }
    exposition.add(Catalogue.httpOpenConnections, .empty, Double(open.load(ordering: .relaxed)))
    exposition.add(Catalogue.httpRejectedConnections, .empty, Double(rejectedCount.load(ordering: .relaxed)))
    // Every reason from the start, at 0: an alert on `increase(...) > 0` needs the series
    // to exist before the first eviction.
    let evicted = evictions.withLock { $0 }
    for reason in HTTPServerStats.evictionReasons {
      exposition.add(Catalogue.httpEvictedConnections, LabelSet([("reason", reason)]), Double(evicted[reason] ?? 0))
    }
    let auth = authFailures.withLock { $0 }
    for reason in BasicAuthenticator.failureReasons {
      exposition.add(Catalogue.httpAuthFailures, LabelSet([("reason", reason)]), Double(auth[reason] ?? 0))
    }
    let handshakes = handshakeFailures.withLock { $0 }
    for reason in HTTPServerStats.handshakeFailureReasons {
      exposition.add(Catalogue.httpTLSHandshakeFailures, LabelSet([("reason", reason)]), Double(handshakes[reason] ?? 0))
    }
    let failures = acceptErrors.withLock { $0 }
    for (code, value) in failures.sorted(by: { Errno.name($0.key) < Errno.name($1.key) }) {
      exposition.add(Catalogue.httpAcceptErrors, LabelSet([("errno", Errno.name(code))]), Double(value))
    }
  }
}

/// Groups a response's parts into buffers of at most one TLS record (16 KiB): each
/// `SSL_write` makes at least one record and one send, and `/metrics` comes as a part per
/// metric family. Parts above the size are kept as they are, never copied.
enum TLSRecords {
  static let size = 16 << 10

  static func coalesce(_ chunks: [[UInt8]]) -> [[UInt8]] {
    var result: [[UInt8]] = []
    var current: [UInt8] = []
    for chunk in chunks {
      if chunk.count >= size {
        if !current.isEmpty { result.append(current) }
        current = []
        result.append(chunk)
        continue
      }
      if current.count + chunk.count > size {
        result.append(current)
        current = []
      }
      if current.isEmpty { current.reserveCapacity(size) }
      current += chunk
    }
    if !current.isEmpty { result.append(current) }
    return result
  }
}
