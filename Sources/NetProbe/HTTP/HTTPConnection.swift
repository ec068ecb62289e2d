/// One client connection of the HTTP server, owned by the server's loop thread
/// (`HTTPServerEngine`) and never shared: its socket, TLS session, buffered input, the
/// response it is writing and the deadlines of its phase.
final class HTTPConnection {
  enum Phase {
    /// A TLS handshake in progress; the handshake deadline applies.
    case handshaking
    case reading
    case processing
    case writing(closeAfter: Bool)
    /// The last response is in the kernel and the connection closes once the client has
    /// acknowledged it: closing earlier would leave an orphaned socket holding the unread
    /// bytes outside the budget.
    case draining
  }

  /// The server's own number for the connection: workers name it in their completions,
  /// and unlike the descriptor it is never reused.
  let id: Int
  let socket: Socket
  /// The client's address key, or nil for a family the limits do not know.
  let client: IPAddress?
  /// The loop pass the connection was accepted in: readiness polled before it existed
  /// belongs to an earlier connection on the same descriptor.
  let acceptedInPass: UInt64
  /// The TLS session when the server speaks TLS.
  var tls: TLSSession?
  /// What the TLS session waits for besides the phase's own readiness: OpenSSL may need to
  /// write while reading (or read while writing).
  var tlsWants: TLSSession.Progress?
  var input: [UInt8] = []
  /// What is left to write of the response; its unsent bytes count in the server's budget.
  var output = ResponseOutput()
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
  /// When the response being delivered must have been acknowledged (`writeTimeout` after it
  /// was ready); nil once it has been.
  var deliveryDeadline: ContinuousClock.Instant?
  var phase = Phase.reading
  /// When the current phase times out.
  var deadline: ContinuousClock.Instant
  /// True while a request has started arriving; the read timeout applies then, the idle
  /// timeout otherwise.
  var requestStarted = false
  /// When the connection last made progress: accepted, a request began, a
  /// response was handed over. Admission evicts the longest-silent first; the pressure
  /// deadline counts from here.
  var lastProgress: ContinuousClock.Instant
  /// The events the loop watches the socket for now; nil when it is not watched.
  var watchedFor: PollEvents?

  init(id: Int, socket: Socket, client: IPAddress?, acceptedInPass: UInt64, now: ContinuousClock.Instant, deadline: ContinuousClock.Instant)
  {
    self.id = id
    self.socket = socket
    self.client = client
    self.acceptedInPass = acceptedInPass
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

  /// What the loop should watch the socket for in this phase: nothing while a worker builds
  /// the response or the kernel drains it, plus whatever the TLS session waits for.
  var interest: PollEvents {
    var events: PollEvents
    switch phase {
    case .handshaking: events = tlsWants == .wantWrite ? .writable : .readable
    case .reading: events = .readable
    case .writing: events = .writable
    case .processing, .draining: return []
    }
    if tlsWants == .wantWrite { events.insert(.writable) }
    if tlsWants == .wantRead { events.insert(.readable) }
    return events
  }
}

/// The response a connection is writing, as the parts it was built in — status line and
/// headers, then the body's parts (a buffer per metric family for `/metrics`) — sent in
/// order and never joined, so a 40 MB body is never copied. This is the connection's write
/// seam: the loop asks for the next bytes, sends what the socket takes and reports it back;
/// a part is released as soon as it is sent.
struct ResponseOutput {
  private var parts: [[UInt8]] = []
  /// The part being sent, and how much of it has gone.
  private var index = 0
  private var offset = 0
  /// Bytes not sent yet, counted in the server's response budget.
  private(set) var unsent = 0

  init() {}

  /// `parts`, grouped into TLS records first when the connection speaks TLS.
  init(parts: [[UInt8]], tls: Bool) {
    self.parts = tls ? TLSRecords.coalesce(parts) : parts
    unsent = parts.reduce(0) { $0 + $1.count }
    _ = passSentParts(largePart: .max)
  }

  var isFinished: Bool { index == parts.count }

  /// Calls `body` with the next unsent bytes, never empty, and whether more parts follow
  /// them (for MSG_MORE); nil when everything has been sent.
  func withNextBytes<Result>(_ body: (UnsafeRawBufferPointer, _ more: Bool) throws -> Result) rethrows -> Result? {
    guard index < parts.count else { return nil }
    let more = index + 1 < parts.count
    return try parts[index].withUnsafeBytes { bytes in try body(UnsafeRawBufferPointer(rebasing: bytes[offset...]), more) }
  }

  /// Records that `count` of the next bytes were sent; returns true when that finished a
  /// part larger than `largePart`, whose pages the caller may give back to the kernel.
  mutating func sent(_ count: Int, largePart: Int) -> Bool {
    unsent -= count
    offset += count
    return passSentParts(largePart: largePart)
  }

  /// Releases the parts sent in full, and empty ones, so that the next bytes are never
  /// empty and `isFinished` holds once everything is out.
  private mutating func passSentParts(largePart: Int) -> Bool {
    var releasedLarge = false
    while index < parts.count && offset == parts[index].count {
      releasedLarge = releasedLarge || parts[index].count > largePart
      parts[index] = []
      index += 1
      offset = 0
    }
    return releasedLarge
  }
}
