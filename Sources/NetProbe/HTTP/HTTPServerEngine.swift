@preconcurrency import Glibc
import Logging

/// What the HTTP server's loop, its workers and its public face share: the listener, the
/// handler, the limits, the workers, the counters. Immutable, so any thread may hold it.
final class HTTPServerContext: Sendable {
  let listener: Socket
  let handler: any HTTPHandler
  let options: HTTPServerOptions
  let workers: WorkerPool
  let stats: HTTPServerStats
  let logger: Logger?
  /// TLS, basic auth and extra headers from `--web.config.file`; nil for none.
  let security: WebSecurity?

  init(
    listener: Socket, handler: any HTTPHandler, options: HTTPServerOptions, workers: WorkerPool, stats: HTTPServerStats,
    logger: Logger?, security: WebSecurity?
  ) {
    self.listener = listener
    self.handler = handler
    self.options = options
    self.workers = workers
    self.stats = stats
    self.logger = logger
    self.security = security
  }
}

/// The HTTP server's protocol logic on the shared event loop (`EventLoop`, thread
/// `http-loop`): accepting and admission at the connection limits, reading and parsing
/// requests, handing them to the workers within the response budget, writing the responses
/// the workers post back (`Completion`, the loop's command), and every deadline. It lives on
/// the loop's thread alone, so nothing here takes a lock.
///
/// Registrations are brought up to date once per pass (`endOfPass`): each connection's
/// phase decides what its socket is watched for, a paused listener is not watched at all,
/// and the wait ends at the nearest connection deadline.
final class HTTPServerEngine: LoopEngine {
  /// A response a worker finished, waiting to be written by the loop.
  struct Completion: Sendable {
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

  typealias Command = Completion
  /// Deadlines are checked at the end of every pass instead: they move with every request,
  /// and under pressure all at once.
  typealias Timer = Never

  let server: HTTPServerContext
  /// Where the workers post their completions.
  let loop: EventLoop<HTTPServerEngine>
  var connections: [Int: HTTPConnection] = [:]
  /// The connection on each descriptor, for readiness.
  var connectionOnDescriptor: [Int32: Int] = [:]
  var nextID = 0
  /// Counts the loop's passes, so that readiness polled for a descriptor's previous
  /// connection never reaches a new connection accepted on it in the same pass.
  var pass: UInt64 = 0
  /// Descriptors of connections closed since the last pass, to unwatch before the wait.
  var closedDescriptors: [Int32] = []
  var listenerWatched = false
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
  /// While set, the listener is not watched: a listener that stays readable while every
  /// accept fails would otherwise spin the loop at 100 % of a core.
  var listenerPausedUntil: ContinuousClock.Instant?
  /// Pressure lasts until this long after its condition last held: connections come and
  /// go under attack, and the tighter deadline must not flap with every one of them.
  var pressureUntil: ContinuousClock.Instant?
  static let pressureHysteresis: Duration = .seconds(10)
  let clock = ContinuousClock()

  init(server: HTTPServerContext, loop: EventLoop<HTTPServerEngine>) {
    self.server = server
    self.loop = loop
    nextQueueRefresh = clock.now
  }

  var options: HTTPServerOptions { server.options }

  // MARK: - The loop's callbacks

  func handle(_ commands: [Completion], loop: inout LoopRegistrations<Never>) {
    finishCompletions(commands)
  }

  func fire(_ timer: Never, now: Int64, loop: inout LoopRegistrations<Never>) {}

  func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Never>) {
    if descriptor == server.listener.fileDescriptor {
      acceptAll()
      return
    }
    guard let id = connectionOnDescriptor[descriptor], let connection = connections[id], connection.acceptedInPass != pass else { return }
    switch connection.phase {
    case .handshaking: handshake(id, connection)
    case .reading: readable(id, connection)
    case .writing: writable(id, connection)
    case .processing, .draining: break
    }
  }

  func endOfPass(now: Int64, loop: inout LoopRegistrations<Never>) {
    if !queued.isEmpty, clock.now >= nextQueueRefresh { refreshKernelQueues() }
    expireDeadlines()
    endExhaustionEpisodeIfQuiet()
    watchWhatEachConnectionWaitsFor(&loop)
    pass &+= 1
  }

  func stopped() {
    for id in Array(connections.keys) { drop(id) }
  }

  /// Brings the loop's poll set up to date with the listener's pause and each connection's
  /// phase, and ends the wait at the nearest deadline.
  func watchWhatEachConnectionWaitsFor(_ loop: inout LoopRegistrations<Never>) {
    let now = clock.now
    for descriptor in closedDescriptors { loop.unwatch(descriptor) }
    closedDescriptors.removeAll(keepingCapacity: true)
    if let until = listenerPausedUntil, now >= until { listenerPausedUntil = nil }
    let listener = server.listener.fileDescriptor
    if listenerPausedUntil == nil, !listenerWatched {
      loop.watch(listener)
      listenerWatched = true
    } else if listenerPausedUntil != nil, listenerWatched {
      loop.unwatch(listener)
      listenerWatched = false
    }
    var nearest = now.advanced(by: .seconds(1))
    if let until = listenerPausedUntil { nearest = min(nearest, until) }
    if !queued.isEmpty { nearest = min(nearest, nextQueueRefresh) }
    let pressure = underPressure(at: now)
    for connection in connections.values {
      nearest = min(nearest, effectiveDeadline(connection, pressure: pressure).instant)
      let interest = connection.interest
      guard interest != connection.watchedFor ?? [] else { continue }
      if interest.isEmpty {
        loop.unwatch(connection.socket.fileDescriptor)
        connection.watchedFor = nil
      } else {
        loop.watch(connection.socket.fileDescriptor, for: interest)
        connection.watchedFor = interest
      }
    }
    // The loop's deadlines are monotonic nanoseconds; this engine's are the clock's instants.
    loop.wake(by: Clocks.monotonicNanoseconds() + now.duration(to: nearest).nanoseconds)
  }

  // MARK: - Accepting

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
        // waiting; with none to close, stop watching the listener until one closes.
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
      let connection = HTTPConnection(
        id: id, socket: socket, client: client, acceptedInPass: pass, now: now, deadline: now.advanced(by: options.idleTimeout))
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
      connectionOnDescriptor[socket.fileDescriptor] = id
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

  // MARK: - Reading and handing requests to the workers

  func readable(_ id: Int, _ connection: HTTPConnection) {
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
  func parse(_ id: Int, _ connection: HTTPConnection) {
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
      // A response small the last time (health, readiness, a small status page) goes ahead
      // of large renders, on a thread kept for those; so does a handler's first, so that
      // the first health check is not queued behind a burst of scrapes either.
      // bcrypt never goes to the thread kept for small responses: a client guessing passwords
      // on /-/healthy must not delay anyone's health check.
      let urgent = pending == nil && (responseEstimate[label].map { $0 <= HTTPServer.smallResponseBytes } ?? true)
      let auth = security?.auth
      let credential = pending
      let extraHeaders = security?.headers ?? []
      let server = self.server
      let loop = self.loop
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
          // Made on its own thread while the loop sends (see PrefetchedBody).
          let prefetched = PrefetchedBody.ahead(stream, threadName: "http-body")
          completion.stream = chunked ? ChunkedBody(prefetched) : prefetched
        }
        completion.measured = measured
        loop.post(completion)
      }
    }
  }

  func finishCompletions(_ done: [Completion]) {
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

  // MARK: - The response budget

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
      total += connection.output.unsent + connection.estimate + connection.kernelQueued
    }
    return total
  }

  /// Answers 503 with Retry-After and closes: the budget is spent on slower readers.
  func busy(_ id: Int, _ connection: HTTPConnection, label: String, head: Bool) {
    server.stats.count(handler: label, code: HTTPStatus.serviceUnavailable.code)
    var response = HTTPResponse.text(
      .serviceUnavailable, "busy: too many responses waiting for their readers; retry\n",
      closeConnection: true)
    response.headers.append((name: "Retry-After", value: "1"))
    respond(connection, response, head: head, keepAlive: false)
    writable(id, connection)
  }

  // MARK: - Writing

  /// Queues a response built by the loop itself (errors, timeouts) and starts writing it.
  /// These are small, their delivery is not waited for, and a client that does not take
  /// one within the pressure deadline is not worth a connection slot any longer.
  func respond(_ connection: HTTPConnection, _ response: HTTPResponse, head: Bool, keepAlive: Bool) {
    var response = response
    if let extra = server.security?.snapshot.headers { response.headers += extra }
    setOutput(connection, [response.serialized(head: head, keepAlive: keepAlive)])
    connection.phase = .writing(closeAfter: !keepAlive)
    connection.deadline = clock.now.advanced(by: min(options.writeTimeout, options.pressureReadTimeout))
    connection.deliveryDeadline = nil
  }

  /// Gives the connection a response to write, in parts; its bytes join the budget.
  func setOutput(_ connection: HTTPConnection, _ parts: [[UInt8]]) {
    heldBytes -= connection.output.unsent
    connection.output = ResponseOutput(parts: parts, tls: connection.tls != nil)
    heldBytes += connection.output.unsent
  }

  /// Sends what the socket takes of the connection's response; once it is all out, reads
  /// the next request (keep-alive) or closes, after the client acknowledged it if the
  /// delivery is waited for.
  func writable(_ id: Int, _ connection: HTTPConnection) {
    guard case .writing(let closeAfter) = connection.phase else { return }
    var releasedLarge = false
    while pullStreamIfDrained(connection) {
      let result: Socket.IOResult?
      let streaming = connection.stream != nil
      do {
        result = try connection.output.withNextBytes { bytes, more in try send(connection, bytes, more: more || streaming) }
      } catch {
        drop(id)
        return
      }
      switch result {
      case .bytes(let count):
        heldBytes -= count
        if connection.output.sent(count, largePart: HTTPServer.trimThreshold) { releasedLarge = true }
      case .wouldBlock, .endOfStream, nil:
        // The send queue is full: what it holds counts against the budget too.
        updateKernelQueue(id, connection)
        return
      }
    }
    // Once a large response is out and released, give its pages back to the kernel.
    connection.output = ResponseOutput()
    defer { if releasedLarge { Memory.releaseFreePages() } }
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

  /// Reads the connection's kernel send queue (SIOCOUTQ) into the budget's count.
  func updateKernelQueue(_ id: Int, _ connection: HTTPConnection) {
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

  // MARK: - Deadlines

  /// Whether the tighter deadline applies now; updates the hysteresis.
  func underPressure(at now: ContinuousClock.Instant) -> Bool {
    if Admission.underPressure(open: connections.count, limit: options.maxConnections, descriptorsExhausted: exhaustedSince != nil) {
      pressureUntil = now.advanced(by: Self.pressureHysteresis)
    }
    return pressureUntil.map { now < $0 } ?? false
  }

  /// The connection's deadline, tightened for a reading connection under pressure
  /// (`pressed`); a response's delivery deadline is handled apart.
  func effectiveDeadline(_ connection: HTTPConnection, pressure: Bool) -> (instant: ContinuousClock.Instant, pressed: Bool) {
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

  // MARK: - TLS and the socket

  /// Advances a TLS handshake; once done the connection reads its first request.
  func handshake(_ id: Int, _ connection: HTTPConnection) {
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
  func receive(_ connection: HTTPConnection, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Socket.IOResult {
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
  func send(_ connection: HTTPConnection, _ bytes: UnsafeRawBufferPointer, more: Bool) throws(SystemError) -> Socket.IOResult {
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

  /// Whether the connection has bytes to write: its output, or once that is all sent, the
  /// next piece of a streamed body, made now — so the body is made as fast as the client
  /// reads it, and a slow reader holds one piece, not the body.
  func pullStreamIfDrained(_ connection: HTTPConnection) -> Bool {
    if !connection.output.isFinished { return true }
    guard let stream = connection.stream else { return false }
    let chunked = stream as? ChunkedBody
    guard let parts = chunked?.nextParts() ?? stream.next().map({ [$0] }) else {
      endStream(connection)
      return false
    }
    connection.streamed += parts.reduce(0) { $0 + $1.count }
    setOutput(connection, parts)
    // The last chunk must leave without MSG_MORE: corked, it would wait 200 ms for more.
    if chunked?.ended == true { endStream(connection) }
    return !connection.output.isFinished
  }

  /// The streamed body is all made: its reservation ends, and its size becomes the
  /// handler's estimate.
  func endStream(_ connection: HTTPConnection) {
    guard connection.stream != nil else { return }
    connection.stream = nil
    processingBytes -= connection.estimate
    connection.estimate = 0
    if !connection.streamLabel.isEmpty { responseEstimate[connection.streamLabel] = connection.streamed }
    if connection.streamed > HTTPServer.trimThreshold { Memory.releaseFreePages() }
  }

  /// Closes a connection and takes it out of every count; its descriptor is unwatched
  /// before the next wait.
  func drop(_ id: Int) {
    guard let connection = connections.removeValue(forKey: id) else { return }
    heldBytes -= connection.output.unsent
    processingBytes -= connection.estimate
    kernelBytes -= connection.kernelQueued
    queued.remove(id)
    if let client = connection.client {
      let left = perClient[client, default: 1] - 1
      perClient[client] = left > 0 ? left : nil
    }
    let descriptor = connection.socket.fileDescriptor
    if connectionOnDescriptor[descriptor] == id { connectionOnDescriptor[descriptor] = nil }
    if connection.watchedFor != nil { closedDescriptors.append(descriptor) }
    connection.tls = nil
    connection.socket.close()
    server.stats.setOpen(connections.count)
    // A descriptor is free again: accept what waits.
    listenerPausedUntil = nil
  }
}
