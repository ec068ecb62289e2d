@preconcurrency import Glibc
import Dispatch
import FoundationEssentials
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
  /// Connections held at once; the one above the limit gets 503 and is closed.
  public var maxConnections = 512
  /// Threads that render responses.
  public var workerThreads = 4
  /// Time from a request's first byte to its complete head and body.
  public var readTimeout: Duration = .seconds(10)
  /// Time a keep-alive connection may wait for its next request.
  public var idleTimeout: Duration = .seconds(60)
  /// Time to deliver one response to a slow reader.
  public var writeTimeout: Duration = .seconds(30)
  /// Bytes of responses being built or waiting for slow readers, past which a new request
  /// is answered 503 instead of rendering one more (a 10,000-target body is about 38 MB,
  /// 4 MB gzipped): memory stays bounded when many clients scrape and never read. One
  /// response is always served, whatever its size.
  public var maxResponseBytesInFlight = 128 << 20

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

  /// Binds and listens at once, so a port already in use fails here with a clear error.
  /// `[::]` (and `:port`, which parses to it) listens on IPv4 too, through v4-mapped
  /// addresses, as Go exporters do; where the kernel has no IPv6 it falls back to 0.0.0.0.
  public init(address: SocketAddress, handler: any HTTPHandler, options: HTTPServerOptions = HTTPServerOptions()) throws(SystemError) {
    var address = address
    let dualStack = address.ip.family == .ip6 && address.ip.isUnspecified
    let socket: Socket
    do {
      socket = try Socket(family: address.addressFamily, type: Int32(SOCK_STREAM.rawValue))
    } catch where dualStack && error.errno == EAFNOSUPPORT {
      address = SocketAddress(.v4(0), port: address.port)
      socket = try Socket(family: address.addressFamily, type: Int32(SOCK_STREAM.rawValue))
    }
    try socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: Int32(1), label: "SO_REUSEADDR")
    if case .v6 = address.ip {
      try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: Int32(dualStack ? 0 : 1), label: "IPV6_V6ONLY")
    }
    try socket.bind(to: address)
    try socket.listen(backlog: 1024)
    try socket.setNonBlocking()
    listener = socket
    localAddress = try socket.localAddress()
    wakeup = try WakeupEvent()
    self.handler = handler
    self.options = options
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
    var close: Bool
    /// For `netprobe_http_requests_total`, counted by the loop: it may still answer 503.
    var label: String
    var code: Int
  }

  /// Responses up to this size are always served: health checks and the landing page must
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
    /// The size of each handler's last response.
    var responseEstimate: [String: Int] = [:]

    init(server: HTTPServer) { self.server = server }

    final class Connection {
      enum Phase {
        case reading
        case processing
        case writing(closeAfter: Bool)
      }
      let socket: Socket
      var input: [UInt8] = []
      /// What is left to write, in order; `written` counts bytes of the first chunk.
      var output: [[UInt8]] = []
      /// Bytes of `output` not yet written, counted in the loop's `heldBytes`.
      var held = 0
      /// While processing: the estimate counted in the loop's `processingBytes`.
      var estimate = 0
      var written = 0
      var phase = Phase.reading
      /// When the current phase times out.
      var deadline: ContinuousClock.Instant
      /// True while a request has started arriving; the read timeout applies then, the idle
      /// timeout otherwise.
      var requestStarted = false

      init(socket: Socket, deadline: ContinuousClock.Instant) {
        self.socket = socket
        self.deadline = deadline
      }
    }

    func run() {
      var entries: [pollfd] = []
      var ids: [Int] = []
      while !server.stopping.load(ordering: .acquiring) {
        entries.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        entries.append(pollfd(fd: server.listener.fileDescriptor, events: Int16(POLLIN), revents: 0))
        entries.append(pollfd(fd: server.wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0))
        var nearest = clock.now.advanced(by: .seconds(1))
        for (id, connection) in connections {
          nearest = min(nearest, connection.deadline)
          let events: Int16
          switch connection.phase {
          case .reading: events = Int16(POLLIN)
          case .writing: events = Int16(POLLOUT)
          case .processing: continue
          }
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
          case .reading: readable(id, connection)
          case .writing: writable(id, connection)
          case .processing: break
          }
        }
        expireDeadlines()
      }
      for id in Array(connections.keys) { drop(id) }
    }

    func milliseconds(until instant: ContinuousClock.Instant) -> Int {
      let duration = clock.now.duration(to: instant)
      let (seconds, attoseconds) = duration.components
      return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000) + 1
    }

    func acceptAll() {
      while true {
        let accepted: Socket?
        do {
          accepted = try server.listener.accept()
        } catch {
          // EMFILE and friends: stop accepting this round; the loop retries shortly.
          return
        }
        guard let socket = accepted else { return }
        if connections.count >= server.options.maxConnections {
          let response = HTTPResponse.text(.serviceUnavailable, "too many connections\n", closeConnection: true)
          let bytes = response.serialized(head: false, keepAlive: false)
          _ = try? bytes.withUnsafeBytes { try socket.send($0) }
          socket.close()
          server.stats.rejected()
          continue
        }
        // A response goes out in parts (head, then a buffer per metric family): without
        // TCP_NODELAY, Nagle held the last part back until the client's delayed ACK, 40 ms
        // per keep-alive request. The parts before it are sent with MSG_MORE instead.
        try? socket.setNoDelay()
        let id = nextID
        nextID += 1
        connections[id] = Connection(socket: socket, deadline: clock.now.advanced(by: server.options.idleTimeout))
        server.stats.setOpen(connections.count)
      }
    }

    func readable(_ id: Int, _ connection: Connection) {
      while true {
        let result: Socket.IOResult
        do {
          result = try readBuffer.withUnsafeMutableBytes { try connection.socket.receive(into: $0) }
        } catch {
          drop(id)
          return
        }
        switch result {
        case .bytes(let count):
          connection.input += readBuffer[0..<count]
          if !connection.requestStarted {
            connection.requestStarted = true
            connection.deadline = clock.now.advanced(by: server.options.readTimeout)
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
        let estimate = request.method == "HEAD" ? 0 : responseEstimate[label] ?? 0
        if overBudget(adding: estimate) {
          busy(id, connection, label: label, head: request.method == "HEAD")
          return
        }
        connection.estimate = estimate
        processingBytes += estimate
        connection.phase = .processing
        connection.deadline = clock.now.advanced(by: .seconds(3600))
        let server = self.server
        server.workers.submit {
          let response = server.handler.respond(to: request).compressedIfAccepted(by: request)
          let keepAlive = request.keepAlive && !response.closeConnection
          let head = response.serializedHead(keepAlive: keepAlive)
          let chunks = request.method == "HEAD" ? [head] : [head] + response.bodyParts
          let completion = Completion(connectionID: id, chunks: chunks, close: !keepAlive, label: label, code: response.status.code)
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
        let size = completion.chunks.reduce(0) { $0 + $1.count }
        if completion.chunks.count > 1 { responseEstimate[completion.label] = size }
        // Checked again with the real size: requests that came in one burst, before their
        // handler's size was known, are held to the budget too.
        if overBudget(adding: size) {
          busy(completion.connectionID, connection, label: completion.label, head: completion.chunks.count == 1)
          continue
        }
        server.stats.count(handler: completion.label, code: completion.code)
        setOutput(connection, completion.chunks)
        connection.phase = .writing(closeAfter: completion.close)
        connection.deadline = clock.now.advanced(by: server.options.writeTimeout)
        writable(completion.connectionID, connection)
      }
    }

    /// Whether a response of `bytes` would take the responses in flight past the budget.
    /// Small responses always pass, and so does one when nothing else is held.
    func overBudget(adding bytes: Int) -> Bool {
      bytes > HTTPServer.smallResponseBytes && heldBytes + processingBytes > 0
        && heldBytes + processingBytes + bytes > server.options.maxResponseBytesInFlight
    }

    /// Answers 503 with Retry-After and closes: the budget is spent on slower readers.
    func busy(_ id: Int, _ connection: Connection, label: String, head: Bool) {
      server.stats.count(handler: label, code: HTTPStatus.serviceUnavailable.code)
      var response = HTTPResponse.text(.serviceUnavailable, "busy: too many responses waiting for their readers; retry\n",
                                       closeConnection: true)
      response.headers.append((name: "Retry-After", value: "1"))
      respond(connection, response, head: head, keepAlive: false)
      writable(id, connection)
    }

    /// Queues a response built by the loop itself (errors, timeouts) and starts writing it.
    func respond(_ connection: Connection, _ response: HTTPResponse, head: Bool, keepAlive: Bool) {
      setOutput(connection, [response.serialized(head: head, keepAlive: keepAlive)])
      connection.phase = .writing(closeAfter: !keepAlive)
      connection.deadline = clock.now.advanced(by: server.options.writeTimeout)
    }

    func setOutput(_ connection: Connection, _ chunks: [[UInt8]]) {
      heldBytes -= connection.held
      connection.output = chunks
      connection.written = 0
      connection.held = chunks.reduce(0) { $0 + $1.count }
      heldBytes += connection.held
    }

    func writable(_ id: Int, _ connection: Connection) {
      guard case .writing(let closeAfter) = connection.phase else { return }
      var wasLarge = false
      while let chunk = connection.output.first {
        if connection.written == chunk.count {
          wasLarge = wasLarge || chunk.count > HTTPServer.trimThreshold
          connection.output.removeFirst()
          connection.written = 0
          continue
        }
        let result: Socket.IOResult
        do {
          let more = connection.output.count > 1
          result = try chunk.withUnsafeBytes { bytes in
            try connection.socket.send(UnsafeRawBufferPointer(rebasing: bytes[connection.written...]), more: more)
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
        case .wouldBlock, .endOfStream: return
        }
      }
      // Once a large response is out and released, give its pages back to the kernel.
      connection.output = []
      defer { if wasLarge { Memory.releaseFreePages() } }
      if closeAfter {
        connection.socket.shutdownWrite()
        drop(id)
        return
      }
      connection.phase = .reading
      connection.requestStarted = !connection.input.isEmpty
      connection.deadline = clock.now.advanced(
        by: connection.requestStarted ? server.options.readTimeout : server.options.idleTimeout)
      parse(id, connection)
    }

    func expireDeadlines() {
      let now = clock.now
      for (id, connection) in connections where connection.deadline <= now {
        switch connection.phase {
        case .reading where connection.requestStarted:
          server.stats.count(handler: "invalid", code: HTTPStatus.requestTimeout.code)
          respond(connection, .text(.requestTimeout, "request not received in time\n", closeConnection: true),
                  head: false, keepAlive: false)
          writable(id, connection)
          // A client that does not read its 408 either is dropped on the next deadline.
        case .reading, .writing, .processing:
          drop(id)
        }
      }
    }

    func drop(_ id: Int) {
      guard let connection = connections.removeValue(forKey: id) else { return }
      heldBytes -= connection.held
      processingBytes -= connection.estimate
      connection.socket.close()
      server.stats.setOpen(connections.count)
    }
  }
}

/// Counters of the HTTP server, exposed through the metrics catalogue.
final class HTTPServerStats: MetricsCollector {
  private struct Key: Hashable {
    var handler: String
    var code: Int
  }
  private let requests = Mutex<[Key: UInt64]>([:])
  private let open = Atomic<Int>(0)
  private let rejectedCount = Atomic<UInt64>(0)

  func count(handler: String, code: Int) {
    requests.withLock { $0[Key(handler: handler, code: code), default: 0] += 1 }
  }

  func setOpen(_ count: Int) { open.store(count, ordering: .relaxed) }
  func rejected() { rejectedCount.add(1, ordering: .relaxed) }

  func collect(into exposition: inout Exposition) {
    let snapshot = requests.withLock { $0 }
    for (key, value) in snapshot.sorted(by: { ($0.key.handler, $0.key.code) < ($1.key.handler, $1.key.code) }) {
      exposition.add(Catalogue.httpRequests, LabelSet([("handler", key.handler), ("code", String(key.code))]), Double(value))
    }
    exposition.add(Catalogue.httpOpenConnections, .empty, Double(open.load(ordering: .relaxed)))
    exposition.add(Catalogue.httpRejectedConnections, .empty, Double(rejectedCount.load(ordering: .relaxed)))
  }
}
