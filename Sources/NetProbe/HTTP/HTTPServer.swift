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

/// A minimal HTTP/1.1 server on Glibc sockets: one event-loop thread reads and writes every
/// connection without blocking, and a small worker pool builds the responses.
///
/// Slow or idle clients cost a buffer in the loop, never a thread, so 50 slowloris
/// connections do not delay a scrape; the loop enforces read, idle and write deadlines.
public final class HTTPServer: Sendable {
  public let localAddress: SocketAddress
  private let listener: Socket
  private let wakeup: WakeupEvent
  private let handler: any HTTPHandler
  private let options: HTTPServerOptions
  private let workers: WorkerPool
  private let completions = Mutex<[Completion]>([])
  private let stopping = Atomic<Bool>(false)
  private let loopFinished = DispatchSemaphore(value: 0)
  private let stats = HTTPServerStats()
  private let logger: Logger?
  /// TLS, basic auth and extra headers from `--web.config.file`; nil for none.
  private let security: WebSecurity?

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
    listener = socket
    localAddress = try socket.localAddress()
    wakeup = try WakeupEvent()
    self.handler = handler
    self.options = options
    self.logger = logger
    self.security = security
    workers = WorkerPool(threads: options.workerThreads, name: "http-worker")
  }

  /// Starts the event loop thread.
  public func start() {
    SystemThread.start(name: "http-loop") { [self] in
      let loop = EventLoop(server: self)
      loop.run()
      loopFinished.signal()
    }
  }

  /// Stops accepting, closes every connection and the workers; returns within a second.
  public func stop() {
    guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
    wakeup.signal()
    _ = loopFinished.wait(timeout: .now() + .milliseconds(600))
    workers.shutdown(timeout: .milliseconds(300))
    listener.close()
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

  /// The server's own metrics: requests by handler and code, open and rejected connections.
  public var metrics: any MetricsCollector { stats }

  // MARK: - Event loop

  /// A response a worker finished, waiting to be written by the loop.
  fileprivate struct Completion: Sendable {
    var connectionID: Int
    /// Status line and headers, then the body: kept apart so a 40 MB body is never copied.
    var chunks: [[UInt8]]
    /// A body made while it is written, after `chunks` (already framed for the wire).
    var stream: (any BodyStream)?
    var close: Bool
    /// For `netprobe_http_requests_total`, counted by the loop: it may still answer 503.
    var label: String
    var code: Int
    /// False for a response the handler did not build (a 401 after bcrypt): its size says
    /// nothing of the handler's next one.
    var measured = true
  }

  /// Responses up to this size are always served: health checks and a small status page must
  /// answer while large scrapes hold the budget.
  static let smallResponseBytes = 64 << 10

  /// State owned by the loop thread alone; nothing here is shared.
  private final class EventLoop {
    let server: HTTPServer
    var connections: [Int: Connection] = [:]
    var nextID = 0
    let clock = ContinuousClock()
    var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    /// Response bytes held by connections still writing them.
    var heldBytes = 0
    /// What the requests handed to a worker are expected to weigh, by the last response of
    /// their handler: a burst of scrapes is held to the budget before it is rendered.
    var processingBytes = 0
    /// Response bytes sent but not acknowledged, in the kernel's send queues, as last read
    /// with SIOCOUTQ from the connections in `queued`.
    var kernelBytes = 0
    /// Connections whose kernel send queue was not empty at the last look.
    var queued = Set<Int>()
    /// When the kernel queues of `queued` are read again.
    var nextQueueRefresh: ContinuousClock.Instant
    /// The size of each handler's last response.
    var responseEstimate: [String: Int] = [:]
    /// Open connections by client address (`Admission.clientKey`).
    var perClient: [IPAddress: Int] = [:]
    /// Set while accept fails for want of descriptors (EMFILE, ENFILE): the time of the
    /// last failure, so the episode is logged once and ends after a quiet spell.
    var exhaustedSince: ContinuousClock.Instant?
    var lastExhaustion: ContinuousClock.Instant?
    var exhaustionFailures = 0
    /// While set, the listener is left out of the poll set: a listener that stays readable
    /// while every accept fails would otherwise spin the loop at 100 % of a core.
    var listenerPausedUntil: ContinuousClock.Instant?
    /// Pressure lasts until this long after its condition last held: connections come and
    /// go under attack, and the tighter deadline must not flap with every one of them.
    var pressureUntil: ContinuousClock.Instant?
    static let pressureHysteresis: Duration = .seconds(10)

    init(server: HTTPServer) {
      self.server = server
      nextQueueRefresh = clock.now
    }

    final class Connection {
      enum Phase {
        /// A TLS handshake in progress; the handshake deadline applies.
        case handshaking
        case reading
        case processing
        case writing(closeAfter: Bool)
        /// The last response is in the kernel and the connection closes once the client
        /// has acknowledged it: closing earlier would leave an orphaned socket holding the
        /// unread bytes outside the budget.
        case draining
      }
      let socket: Socket
      /// The client's address key, or nil for a family the limits do not know.
      let client: IPAddress?
      /// The TLS session when the server speaks TLS.
      var tls: TLSSession?
      /// What the TLS session waits for besides the phase's own readiness: OpenSSL may need
      /// to write while reading (or read while writing).
      var tlsWants: TLSSession.Progress?
      var input: [UInt8] = []
      /// What is left to write, in order; `written` counts bytes of the first chunk.
      var output: [[UInt8]] = []
      /// Bytes of `output` not yet written, counted in the loop's `heldBytes`.
      var held = 0
      /// A streamed body still being made: its next piece is pulled once `output` is all
      /// written, so the connection holds one piece however slowly the client reads.
      var stream: (any BodyStream)?
      /// The streamed body's handler and bytes so far, for the handler's size estimate.
      var streamLabel = ""
      var streamed = 0
      /// While processing: the estimate counted in the loop's `processingBytes`.
      var estimate = 0
      /// Bytes in the kernel's send queue at the last look, counted in `kernelBytes`.
      var kernelQueued = 0
      /// When the response being delivered must have been acknowledged (`writeTimeout`
      /// after it was ready); nil once it has been.
      var deliveryDeadline: ContinuousClock.Instant?
      var written = 0
      var phase = Phase.reading
      /// When the current phase times out.
      var deadline: ContinuousClock.Instant
      /// True while a request has started arriving; the read timeout applies then, the idle
      /// timeout otherwise.
      var requestStarted = false
      /// When the connection last made progress: accepted, a request began, a response
      /// was handed over. Admission evicts the longest-silent first; the pressure
      /// deadline counts from here.
      var lastProgress: ContinuousClock.Instant

      init(socket: Socket, client: IPAddress?, now: ContinuousClock.Instant, deadline: ContinuousClock.Instant) {
        self.socket = socket
        self.client = client
        self.deadline = deadline
        lastProgress = now
      }

      var admissionState: Admission.State {
        switch phase {
        case .handshaking: .incompleteRequest
        case .reading: requestStarted ? .incompleteRequest : .idle
        case .processing, .writing, .draining: .answering
        }
      }
    }

    func run() {
      var entries: [pollfd] = []
      var ids: [Int] = []
      while !server.stopping.load(ordering: .acquiring) {
        entries.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        if let until = listenerPausedUntil, clock.now >= until { listenerPausedUntil = nil }
        // A paused listener is polled on a descriptor that is never ready (-1 is skipped).
        let listenerFD = listenerPausedUntil == nil ? server.listener.fileDescriptor : -1
        entries.append(pollfd(fd: listenerFD, events: Int16(POLLIN), revents: 0))
        entries.append(pollfd(fd: server.wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0))
        var nearest = clock.now.advanced(by: .seconds(1))
        if let until = listenerPausedUntil { nearest = min(nearest, until) }
        if !queued.isEmpty { nearest = min(nearest, nextQueueRefresh) }
        let pressure = underPressure(at: clock.now)
        for (id, connection) in connections {
          nearest = min(nearest, effectiveDeadline(connection, pressure: pressure).instant)
          var events: Int16
          switch connection.phase {
          case .handshaking: events = connection.tlsWants == .wantWrite ? Int16(POLLOUT) : Int16(POLLIN)
          case .reading: events = Int16(POLLIN)
          case .writing: events = Int16(POLLOUT)
          case .processing, .draining: continue
          }
          if connection.tlsWants == .wantWrite { events |= Int16(POLLOUT) }
          if connection.tlsWants == .wantRead { events |= Int16(POLLIN) }
          entries.append(pollfd(fd: connection.socket.fileDescriptor, events: events, revents: 0))
          ids.append(id)
        }
        let wait = max(0, min(1000, milliseconds(until: nearest)))
        do {
          _ = try Poller.poll(&entries, timeoutMilliseconds: Int32(wait))
        } catch {
          // poll only fails on programming errors (EFAULT, EINVAL); never spin on one.
          usleep(10_000)
          continue
        }
        if entries[1].revents != 0 {
          server.wakeup.drain()
          finishCompletions()
        }
        if entries[0].revents != 0 { acceptAll() }
        for (offset, id) in ids.enumerated() where entries[offset + 2].revents != 0 {
          guard let connection = connections[id] else { continue }
          switch connection.phase {
          case .handshaking: handshake(id, connection)
          case .reading: readable(id, connection)
          case .writing: writable(id, connection)
          case .processing, .draining: break
          }
        }
        if !queued.isEmpty, clock.now >= nextQueueRefresh { refreshKernelQueues() }
        expireDeadlines()
        endExhaustionEpisodeIfQuiet()
      }
      for id in Array(connections.keys) { drop(id) }
    }

    func milliseconds(until instant: ContinuousClock.Instant) -> Int {
      let duration = clock.now.duration(to: instant)
      let (seconds, attoseconds) = duration.components
      return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000) + 1
    }

    var options: HTTPServerOptions { server.options }

    func acceptAll() {
      // Victims for this burst, ranked once when first needed (see `Admission.ranked`).
      var ranked: [Admission.Candidate]?
      var nextVictim = 0
      /// The next ranked connection still open and still evictable.
      func globalVictim() -> Admission.Candidate? {
        // Ranked again once used up: the burst's own newcomers may be idle by now.
        for attempt in 0..<2 {
          if ranked == nil || attempt == 1 {
            ranked = rankedVictims()
            nextVictim = 0
          }
          while let list = ranked, nextVictim < list.count {
            let candidate = list[nextVictim]
            nextVictim += 1
            if let connection = connections[candidate.id], connection.admissionState != .answering { return candidate }
          }
        }
        return nil
      }
      while true {
        let accepted: (socket: Socket, peer: SocketAddress?)?
        do {
          accepted = try server.listener.acceptWithPeer()
        } catch {
          server.stats.acceptFailed(errno: error.errno)
          guard error.errno == EMFILE || error.errno == ENFILE else {
            // ENOBUFS, ENOMEM and the like: the listener stays readable, so wait a little
            // instead of failing again at once.
            listenerPausedUntil = clock.now.advanced(by: .milliseconds(100))
            return
          }
          descriptorsExhausted(error)
          // Out of descriptors: close the cheapest connection to make room for the one
          // waiting; with none to close, stop polling the listener until one closes.
          if let victim = globalVictim() {
            evict(victim)
            continue
          }
          listenerPausedUntil = clock.now.advanced(by: .seconds(1))
          return
        }
        guard let (socket, peer) = accepted else { return }
        let client = peer.map { Admission.clientKey($0.ip) }
        if let client, options.maxConnectionsPerClient > 0, perClient[client, default: 0] >= options.maxConnectionsPerClient {
          // Over TLS a client's own connection is not cut for its own newcomer while it is in
          // its handshake or was busy within the last second: that would only start the
          // same handshake again. With `wrk -c64` against a limit of 32, newcomers evicted
          // each other mid-handshake and almost none finished (14 requests/s).
          guard let victim = chooseVictim(onlyClient: client), !worthKeeping(victim.id) else {
            refuse(socket)
            continue
          }
          evict(victim)
        }
        if connections.count >= options.maxConnections {
          guard let victim = globalVictim() else {
            refuse(socket)
            continue
          }
          evict(victim)
        }
        // A response goes out in parts (head, then a buffer per metric family): without
        // TCP_NODELAY, Nagle held the last part back until the client's delayed ACK, 40 ms
        // per keep-alive request. The parts before it are sent with MSG_MORE instead.
        try? socket.setNoDelay()
        let id = nextID
        nextID += 1
        let now = clock.now
        let connection = Connection(socket: socket, client: client, now: now, deadline: now.advanced(by: options.idleTimeout))
        if let security = server.security, security.tlsEnabled {
          guard let context = security.snapshot.tls,
            let session = TLSSession(context: context, fileDescriptor: socket.fileDescriptor)
          else {
            server.stats.tlsHandshakeFailed(reason: "error")
            socket.close()
            continue
          }
          connection.tls = session
          connection.phase = .handshaking
          connection.deadline = now.advanced(by: options.handshakeTimeout)
        }
        connections[id] = connection
        if let client { perClient[client, default: 0] += 1 }
        server.stats.setOpen(connections.count)
        if connection.tls != nil {
          handshake(id, connection)
          continue
        }
        // Read at once: a request that is already here makes the connection one that is
        // answered, which admission never evicts.
        readable(id, connection)
      }
    }

    /// Answers 503 and closes: every connection is answering a complete request. Over TLS
    /// there is no handshake to answer in: the connection is only closed.
    func refuse(_ socket: Socket) {
      if server.security?.tlsEnabled == true {
        socket.close()
        server.stats.rejected()
        return
      }
      let response = HTTPResponse.text(.serviceUnavailable, "too many connections\n", closeConnection: true)
      let bytes = response.serialized(head: false, keepAlive: false)
      _ = try? bytes.withUnsafeBytes { try socket.send($0) }
      socket.close()
      server.stats.rejected()
    }

    var candidates: some Sequence<Admission.Candidate> {
      let unknown = IPAddress.v4(0)
      return connections.lazy.map { id, connection in
        Admission.Candidate(
          id: id, client: connection.client ?? unknown, state: connection.admissionState,
          lastProgress: connection.lastProgress)
      }
    }

    /// Whether a TLS connection costs more to evict than a newcomer of the same client is
    /// worth: in its handshake, or busy less than a second ago.
    func worthKeeping(_ id: Int) -> Bool {
      guard let connection = connections[id], connection.tls != nil else { return false }
      if case .handshaking = connection.phase { return true }
      return connection.lastProgress.duration(to: clock.now) < .seconds(1)
    }

    /// The victim among one client's connections, for the per-client limit.
    func chooseVictim(onlyClient: IPAddress) -> Admission.Candidate? {
      Admission.victim(among: candidates, connectionsPerClient: perClient, onlyClient: onlyClient)
    }

    func rankedVictims() -> [Admission.Candidate] {
      Admission.ranked(candidates, connectionsPerClient: perClient)
    }

    /// Closes a connection to make room for a newcomer, and counts it.
    func evict(_ victim: Admission.Candidate) {
      server.stats.evicted(reason: victim.state.evictionReason)
      drop(victim.id)
    }

    /// Starts or continues an episode of descriptor exhaustion; logs its start only.
    func descriptorsExhausted(_ error: SystemError) {
      let now = clock.now
      lastExhaustion = now
      exhaustionFailures += 1
      guard exhaustedSince == nil else { return }
      exhaustedSince = now
      server.logger?.warning(
        "out of file descriptors: closing idle connections to accept new ones, pausing accept when none is idle",
        metadata: [
          "error": "\(error)", "open_connections": "\(connections.count)",
          "open_files_limit": "\((try? OpenFileLimit.current().soft).map(String.init) ?? "unknown")",
        ])
    }

    /// Ends an exhaustion episode after 10 s without a failed accept, and says so.
    func endExhaustionEpisodeIfQuiet() {
      guard let since = exhaustedSince, let last = lastExhaustion, last.duration(to: clock.now) >= .seconds(10) else { return }
      server.logger?.info(
        "file descriptors available again",
        metadata: [
          "failed_accepts": "\(exhaustionFailures)", "episode_seconds": "\(since.duration(to: last).components.seconds)",
          "open_connections": "\(connections.count)",
        ])
      exhaustedSince = nil
      lastExhaustion = nil
      exhaustionFailures = 0
    }

    func readable(_ id: Int, _ connection: Connection) {
      while true {
        let result: Socket.IOResult
        do {
          result = try readBuffer.withUnsafeMutableBytes { try receive(connection, into: $0) }
        } catch {
          drop(id)
          return
        }
        switch result {
        case .bytes(let count):
          connection.input += readBuffer[0..<count]
          if !connection.requestStarted {
            connection.requestStarted = true
            connection.lastProgress = clock.now
            connection.deadline = clock.now.advanced(by: options.readTimeout)
          }
          // Stop reading once a whole request could be buffered; parse decides the rest.
          if connection.input.count > HTTPRequestParser.maxHeaderBytes + HTTPRequestParser.maxBodyBytes + 8 {
            parse(id, connection)
            return
          }
        case .wouldBlock:
          parse(id, connection)
          return
        case .endOfStream:
          drop(id)
          return
        }
      }
    }

    /// Looks for a complete request in the buffer and hands it to a worker.
    func parse(_ id: Int, _ connection: Connection) {
      guard case .reading = connection.phase, !connection.input.isEmpty else { return }
      switch HTTPRequestParser.parse(connection.input) {
      case .incomplete:
        return
      case .failure(let status, let reason):
        server.stats.count(handler: "invalid", code: status.code)
        respond(connection, HTTPResponse.text(status, "\(reason)\n", closeConnection: true), head: false, keepAlive: false)
      case .request(let request, let headLength):
        let total = headLength + request.contentLength
        guard connection.input.count >= total else { return }
        connection.input.removeFirst(total)
        let label = server.handler.handlerLabel(for: request)
        let head = request.method == "HEAD"
        let security = server.security?.snapshot
        // Every endpoint is behind basic auth when users are configured. Known credentials
        // are decided here from the cache; new ones go to a worker for bcrypt, within budget.
        var pending: BasicAuthenticator.Pending?
        if let auth = security?.auth {
          switch auth.check(authorization: request.header("authorization"), client: connection.client) {
          case .allowed:
            break
          case .denied(let reason):
            server.stats.authFailed(reason: reason)
            server.stats.count(handler: label, code: HTTPServer.unauthorized.code)
            respond(connection, HTTPServer.unauthorizedResponse(), head: head, keepAlive: request.keepAlive)
            writable(id, connection)
            return
          case .throttled:
            server.stats.authFailed(reason: "throttled")
            server.stats.count(handler: label, code: HTTPServer.tooManyRequests.code)
            var response = HTTPResponse.text(
              HTTPServer.tooManyRequests, "too many new credentials to check; retry later\n",
              closeConnection: true)
            response.headers.append((name: "Retry-After", value: "1"))
            respond(connection, response, head: head, keepAlive: false)
            writable(id, connection)
            return
          case .verify(let credential):
            pending = credential
          }
        }
        // A request waiting for its credentials to be checked weighs nothing yet: its real
        // size is held to the budget when it is ready.
        let estimate = head || pending != nil ? 0 : responseEstimate[label] ?? 0
        if overBudget(adding: estimate, for: connection.client) {
          busy(id, connection, label: label, head: request.method == "HEAD")
          return
        }
        connection.estimate = estimate
        processingBytes += estimate
        connection.phase = .processing
        connection.deadline = clock.now.advanced(by: .seconds(3600))
        let server = self.server
        // A response small the last time (health, readiness, a small status page) goes ahead
        // of large renders, on a thread kept for those; so does a handler's first, so that
        // the first health check is not queued behind a burst of scrapes either.
        // bcrypt never goes to the thread kept for small responses: a client guessing passwords
        // on /-/healthy must not delay anyone's health check.
        let urgent = pending == nil && (responseEstimate[label].map { $0 <= HTTPServer.smallResponseBytes } ?? true)
        let auth = security?.auth
        let credential = pending
        let extraHeaders = security?.headers ?? []
        server.workers.submit(urgent: urgent, client: connection.client) {
          var response: HTTPResponse
          var measured = true
          if let credential, let auth, !auth.verify(credential) {
            server.stats.authFailed(reason: "wrong_credentials")
            response = HTTPServer.unauthorizedResponse()
            measured = false
          } else {
            response = server.handler.respond(to: request).compressedIfAccepted(by: request)
          }
          response.headers += extraHeaders
          // HTTP/1.0 has no chunked coding: a streamed body ends with the connection.
          let chunked = request.minorVersion >= 1
          let keepAlive = request.keepAlive && !response.closeConnection && (response.bodyStream == nil || chunked)
          let head = response.serializedHead(keepAlive: keepAlive, chunked: chunked)
          let chunks = request.method == "HEAD" ? [head] : [head] + response.bodyParts
          var completion = Completion(connectionID: id, chunks: chunks, close: !keepAlive, label: label, code: response.status.code)
          if request.method != "HEAD", let stream = response.bodyStream {
            completion.stream = chunked ? ChunkedBody(stream) : stream
          }
          completion.measured = measured
          server.completions.withLock { $0.append(completion) }
          server.wakeup.signal()
        }
      }
    }

    func finishCompletions() {
      let done = server.completions.withLock { list in
        defer { list.removeAll() }
        return list
      }
      for completion in done {
        guard let connection = connections[completion.connectionID] else { continue }
        processingBytes -= connection.estimate
        connection.estimate = 0
        var size = completion.chunks.reduce(0) { $0 + $1.count }
        if completion.chunks.count > 1 && completion.measured { responseEstimate[completion.label] = size }
        // A streamed body's size is known only once it is sent: until then it weighs what
        // the handler's last one did, reserved in `processingBytes`.
        if completion.stream != nil { size = responseEstimate[completion.label] ?? 0 }
        // Checked again with the real size: requests that came in one burst, before their
        // handler's size was known, are held to the budget too.
        if overBudget(adding: size, for: connection.client) {
          busy(
            completion.connectionID, connection, label: completion.label,
            head: completion.chunks.count == 1 && completion.stream == nil)
          continue
        }
        server.stats.count(handler: completion.label, code: completion.code)
        setOutput(connection, completion.chunks)
        if let stream = completion.stream {
          connection.stream = stream
          connection.streamLabel = completion.measured ? completion.label : ""
          connection.streamed = 0
          connection.estimate = size
          processingBytes += size
        }
        connection.phase = .writing(closeAfter: completion.close)
        let deadline = clock.now.advanced(by: options.writeTimeout)
        connection.deadline = deadline
        // Behind a previous response still unacknowledged, the earlier deadline holds.
        connection.deliveryDeadline = min(connection.deliveryDeadline ?? deadline, deadline)
        writable(completion.connectionID, connection)
      }
    }

    /// Whether a response of `bytes` would take the responses in flight past the budget,
    /// or `client`'s in-flight responses past its share. Small responses always pass, and
    /// so does one when nothing else is held (by anyone, or by that client).
    func overBudget(adding bytes: Int, for client: IPAddress?) -> Bool {
      guard bytes > HTTPServer.smallResponseBytes else { return false }
      let inFlight = heldBytes + processingBytes + kernelBytes
      if inFlight > 0 && inFlight + bytes > options.maxResponseBytesInFlight { return true }
      guard let client else { return false }
      let clientInFlight = bytesInFlight(of: client)
      return clientInFlight > 0 && clientInFlight + bytes > options.maxResponseBytesPerClient
    }

    /// Response bytes a client's connections hold: being built, in the process, in the
    /// kernel. A scan, as it is only needed per large request and connections are few.
    func bytesInFlight(of client: IPAddress) -> Int {
      guard perClient[client] != nil else { return 0 }
      var total = 0
      for connection in connections.values where connection.client == client {
        total += connection.held + connection.estimate + connection.kernelQueued
      }
      return total
    }

    /// Answers 503 with Retry-After and closes: the budget is spent on slower readers.
    func busy(_ id: Int, _ connection: Connection, label: String, head: Bool) {
      server.stats.count(handler: label, code: HTTPStatus.serviceUnavailable.code)
      var response = HTTPResponse.text(
        .serviceUnavailable, "busy: too many responses waiting for their readers; retry\n",
        closeConnection: true)
      response.headers.append((name: "Retry-After", value: "1"))
      respond(connection, response, head: head, keepAlive: false)
      writable(id, connection)
    }

    /// Queues a response built by the loop itself (errors, timeouts) and starts writing it.
    /// These are small, their delivery is not waited for, and a client that does not take
    /// one within the pressure deadline is not worth a connection slot any longer.
    func respond(_ connection: Connection, _ response: HTTPResponse, head: Bool, keepAlive: Bool) {
      var response = response
      if let extra = server.security?.snapshot.headers { response.headers += extra }
      setOutput(connection, [response.serialized(head: head, keepAlive: keepAlive)])
      connection.phase = .writing(closeAfter: !keepAlive)
      connection.deadline = clock.now.advanced(by: min(options.writeTimeout, options.pressureReadTimeout))
      connection.deliveryDeadline = nil
    }

    func setOutput(_ connection: Connection, _ chunks: [[UInt8]]) {
      heldBytes -= connection.held
      connection.output = connection.tls == nil ? chunks : TLSRecords.coalesce(chunks)
      connection.written = 0
      connection.held = chunks.reduce(0) { $0 + $1.count }
      heldBytes += connection.held
    }

    func writable(_ id: Int, _ connection: Connection) {
      guard case .writing(let closeAfter) = connection.phase else { return }
      var wasLarge = false
      while let chunk = nextChunk(connection) {
        if connection.written == chunk.count {
          wasLarge = wasLarge || chunk.count > HTTPServer.trimThreshold
          connection.output.removeFirst()
          connection.written = 0
          continue
        }
        let result: Socket.IOResult
        do {
          let more = connection.output.count > 1 || connection.stream != nil
          result = try chunk.withUnsafeBytes { bytes in
            try send(connection, UnsafeRawBufferPointer(rebasing: bytes[connection.written...]), more: more)
          }
        } catch {
          drop(id)
          return
        }
        switch result {
        case .bytes(let count):
          connection.written += count
          connection.held -= count
          heldBytes -= count
        case .wouldBlock, .endOfStream:
          // The send queue is full: what it holds counts against the budget too.
          updateKernelQueue(id, connection)
          return
        }
      }
      // Once a large response is out and released, give its pages back to the kernel.
      connection.output = []
      defer { if wasLarge { Memory.releaseFreePages() } }
      connection.lastProgress = clock.now
      // A handler's response is delivered once acknowledged; until then its bytes in the
      // kernel count against the budget and `deliveryDeadline` still applies.
      if connection.deliveryDeadline != nil {
        updateKernelQueue(id, connection)
        if connection.kernelQueued == 0 { connection.deliveryDeadline = nil }
      }
      if closeAfter {
        connection.tls?.shutdown()
        if let deadline = connection.deliveryDeadline {
          connection.phase = .draining
          connection.deadline = deadline
          return
        }
        connection.socket.shutdownWrite()
        drop(id)
        return
      }
      connection.phase = .reading
      connection.requestStarted = !connection.input.isEmpty
      connection.deadline = clock.now.advanced(by: connection.requestStarted ? options.readTimeout : options.idleTimeout)
      // Bytes OpenSSL already decrypted are invisible to poll: read them now.
      if let tls = connection.tls, tls.pending > 0 {
        readable(id, connection)
      } else {
        parse(id, connection)
      }
    }

    /// The chunk to write next: the first of `output`, or once that is all written, the
    /// next piece of a streamed body, made now — so the body is made as fast as the client
    /// reads it, and a slow reader holds one piece, not the body.
    func nextChunk(_ connection: Connection) -> [UInt8]? {
      if let chunk = connection.output.first { return chunk }
      guard let stream = connection.stream else { return nil }
      let chunked = stream as? ChunkedBody
      guard let parts = chunked?.nextParts() ?? stream.next().map({ [$0] }) else {
        endStream(connection)
        return nil
      }
      connection.streamed += parts.reduce(0) { $0 + $1.count }
      setOutput(connection, parts)
      // The last chunk must leave without MSG_MORE: corked, it would wait 200 ms for more.
      if chunked?.ended == true { endStream(connection) }
      return connection.output.first
    }

    /// The streamed body is all made: its reservation ends, and its size becomes the
    /// handler's estimate.
    func endStream(_ connection: Connection) {
      guard connection.stream != nil else { return }
      connection.stream = nil
      processingBytes -= connection.estimate
      connection.estimate = 0
      if !connection.streamLabel.isEmpty { responseEstimate[connection.streamLabel] = connection.streamed }
      if connection.streamed > HTTPServer.trimThreshold { Memory.releaseFreePages() }
    }

    /// Reads the connection's kernel send queue (SIOCOUTQ) into the budget's count.
    func updateKernelQueue(_ id: Int, _ connection: Connection) {
      let bytes = (try? connection.socket.unacknowledgedOutputBytes()) ?? 0
      kernelBytes += bytes - connection.kernelQueued
      connection.kernelQueued = bytes
      if bytes > 0 {
        queued.insert(id)
      } else {
        queued.remove(id)
      }
    }

    /// Every 250 ms while responses sit in kernel queues: reads them again, closes the
    /// draining connections whose client has acknowledged everything, and ends the
    /// delivery deadline of keep-alive connections whose response is through.
    func refreshKernelQueues() {
      nextQueueRefresh = clock.now.advanced(by: .milliseconds(250))
      for id in queued {
        guard let connection = connections[id] else {
          queued.remove(id)
          continue
        }
        updateKernelQueue(id, connection)
        guard connection.kernelQueued == 0 else { continue }
        switch connection.phase {
        case .draining:
          connection.socket.shutdownWrite()
          drop(id)
        case .reading:
          connection.deliveryDeadline = nil
        case .writing, .processing, .handshaking:
          break
        }
      }
    }

    /// Whether the tighter deadline applies now; updates the hysteresis.
    func underPressure(at now: ContinuousClock.Instant) -> Bool {
      if Admission.underPressure(open: connections.count, limit: options.maxConnections, descriptorsExhausted: exhaustedSince != nil) {
        pressureUntil = now.advanced(by: EventLoop.pressureHysteresis)
      }
      return pressureUntil.map { now < $0 } ?? false
    }

    /// The connection's deadline, tightened for a reading connection under pressure
    /// (`pressed`); a response's delivery deadline is handled apart.
    func effectiveDeadline(_ connection: Connection, pressure: Bool) -> (instant: ContinuousClock.Instant, pressed: Bool) {
      var deadline = connection.deadline
      if let delivery = connection.deliveryDeadline { deadline = min(deadline, delivery) }
      switch connection.phase {
      case .reading, .handshaking: guard pressure else { return (deadline, false) }
      case .processing, .writing, .draining: return (deadline, false)
      }
      let tighter = connection.lastProgress.advanced(by: options.pressureReadTimeout)
      return tighter < deadline ? (tighter, true) : (deadline, false)
    }

    func expireDeadlines() {
      let now = clock.now
      let pressure = underPressure(at: now)
      for (id, connection) in connections {
        // A response not acknowledged in time is dropped, wherever its bytes are: the
        // reset frees the kernel's copy at once.
        if let delivery = connection.deliveryDeadline, delivery <= now {
          server.stats.evicted(reason: "unread_response")
          try? connection.socket.setResetOnClose()
          drop(id)
          continue
        }
        let (deadline, pressed) = effectiveDeadline(connection, pressure: pressure)
        guard deadline <= now else { continue }
        if pressed { server.stats.evicted(reason: "pressure_timeout") }
        switch connection.phase {
        case .handshaking:
          server.stats.tlsHandshakeFailed(reason: "timeout")
          drop(id)
        case .reading where connection.requestStarted:
          server.stats.count(handler: "invalid", code: HTTPStatus.requestTimeout.code)
          respond(
            connection, .text(.requestTimeout, "request not received in time\n", closeConnection: true),
            head: false, keepAlive: false)
          writable(id, connection)
        // A client that does not read its 408 either is dropped on the next deadline.
        case .reading, .writing, .processing, .draining:
          if connection.kernelQueued > 0 { try? connection.socket.setResetOnClose() }
          drop(id)
        }
      }
    }

    /// Advances a TLS handshake; once done the connection reads its first request.
    func handshake(_ id: Int, _ connection: Connection) {
      guard let tls = connection.tls else { return }
      connection.tlsWants = nil
      switch tls.handshake() {
      case .done:
        connection.phase = .reading
        connection.requestStarted = false
        connection.lastProgress = clock.now
        connection.deadline = clock.now.advanced(by: options.idleTimeout)
        readable(id, connection)
      case .wantRead:
        connection.tlsWants = .wantRead
      case .wantWrite:
        connection.tlsWants = .wantWrite
      case .plainHTTP:
        // What Go's servers answer, in plain text, so that the person at the other end of
        // `curl http://` learns why.
        server.stats.tlsHandshakeFailed(reason: "plain_http")
        server.stats.count(handler: "invalid", code: HTTPStatus.badRequest.code)
        let answer = Array(
          "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
            .utf8)
        _ = try? answer.withUnsafeBytes { try connection.socket.send($0) }
        connection.socket.shutdownWrite()
        // Take the rest of the request out of the receive queue, so that the close sends a
        // FIN, not a reset that could destroy the answer before the client reads it.
        for _ in 0..<4 {
          guard case .bytes = (try? readBuffer.withUnsafeMutableBytes { try connection.socket.receive(into: $0) }) else { break }
        }
        drop(id)
      case .closed, .failed:
        server.stats.tlsHandshakeFailed(reason: "error")
        server.logger?.debug("TLS handshake failed", metadata: ["error": "\(tls.lastError)"])
        drop(id)
      }
    }

    /// Reads from the connection: through its TLS session, or from the socket.
    func receive(_ connection: Connection, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Socket.IOResult {
      guard let tls = connection.tls else { return try connection.socket.receive(into: buffer) }
      connection.tlsWants = nil
      let (count, progress) = tls.read(into: buffer)
      switch progress {
      case .done: return .bytes(count)
      case .wantRead: return .wouldBlock
      case .wantWrite:
        connection.tlsWants = .wantWrite
        return .wouldBlock
      case .closed: return .endOfStream
      case .plainHTTP, .failed: throw SystemError("SSL_read", errno: EPROTO)
      }
    }

    /// Writes to the connection: through its TLS session, or to the socket.
    func send(_ connection: Connection, _ bytes: UnsafeRawBufferPointer, more: Bool) throws(SystemError) -> Socket.IOResult {
      guard let tls = connection.tls else { return try connection.socket.send(bytes, more: more) }
      connection.tlsWants = nil
      let (count, progress) = tls.write(bytes)
      switch progress {
      case .done: return .bytes(count)
      case .wantWrite: return .wouldBlock
      case .wantRead:
        connection.tlsWants = .wantRead
        return .wouldBlock
      case .closed, .plainHTTP, .failed: throw SystemError("SSL_write", errno: EPIPE)
      }
    }

    func drop(_ id: Int) {
      guard let connection = connections.removeValue(forKey: id) else { return }
      heldBytes -= connection.held
      processingBytes -= connection.estimate
      kernelBytes -= connection.kernelQueued
      queued.remove(id)
      if let client = connection.client {
        let left = perClient[client, default: 1] - 1
        perClient[client] = left > 0 ? left : nil
      }
      connection.tls = nil
      connection.socket.close()
      server.stats.setOpen(connections.count)
      // A descriptor is free again: accept what waits.
      listenerPausedUntil = nil
    }
  }
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
