import FoundationEssentials

/// What went wrong with one push attempt.
enum PushProblem: Equatable, Sendable {
  /// The gateway answered, but not 2xx: its status and the start of its answer.
  case rejected(status: Int, body: [UInt8])
  /// No answer: connection refused, timeout, TLS failure, unreadable password file, no libcurl.
  case failure(String)
}

/// How one push ended, retries included.
struct PushOutcome: Equatable, Sendable {
  var succeeded: Bool
  /// Attempts after the first.
  var retries: Int
  /// For a failed push, why its last attempt failed; for a success after retries, why the
  /// last failed attempt did (a 500 a retry cured is still worth a log line); nil for a
  /// success at the first attempt.
  var problem: PushProblem?

  static func success(retries: Int = 0, after problem: PushProblem? = nil) -> PushOutcome {
    PushOutcome(succeeded: true, retries: retries, problem: problem)
  }

  static func failed(_ problem: PushProblem, retries: Int = 0) -> PushOutcome {
    PushOutcome(succeeded: false, retries: retries, problem: problem)
  }

  /// Up to the first 512 bytes of a gateway's answer, without surrounding whitespace, for
  /// a log line (the log formats escape any line breaks inside).
  static func excerpt(_ body: [UInt8]) -> String {
    String(decoding: body.prefix(512), as: UTF8.self).trimmingWhitespace()
  }
}

/// The result of one attempt, as the push loop sees it.
enum PushAttempt: Equatable {
  /// 2xx.
  case accepted
  case problem(PushProblem)
  /// Given up because the loop is stopping.
  case abandoned
}

/// When a failed push attempt is tried again: exponential backoff from 200 ms, doubling up
/// to 5 s, with full jitter (a random wait between 50 ms and the backoff, so agents
/// restarted together spread out), and never past the push's deadline, which the config
/// keeps shorter than the interval so that pushes never overlap. Pure: the time left and
/// the random source are passed in.
struct RetrySchedule {
  static let firstBackoff = Duration.milliseconds(200)
  static let maximumBackoff = Duration.seconds(5)
  static let minimumWait = Duration.milliseconds(50)
  /// The least time an attempt is given: a retry that would have less before the deadline
  /// once its wait is over is not made.
  static let minimumAttempt = Duration.milliseconds(100)

  /// The upper bound of the next wait.
  private(set) var backoff = firstBackoff

  /// Whether an attempt that failed so is worth repeating: no answer, 408, 429 and 5xx
  /// are; any other answer (3xx, 4xx) is one the gateway would give again.
  static func isRetryable(_ problem: PushProblem) -> Bool {
    switch problem {
    case .failure: true
    case .rejected(let status, _): status == 408 || status == 429 || status >= 500
    }
  }

  /// The wait before the next attempt, or nil when that attempt would not fit before the
  /// deadline (`remaining` from now). `random` picks a whole number of milliseconds in
  /// the range it is given.
  mutating func nextWait(remaining: Duration, random: (ClosedRange<Int>) -> Int = { Int.random(in: $0) }) -> Duration? {
    let low = Self.milliseconds(Self.minimumWait)
    let wait = Duration.milliseconds(random(low...max(low, Self.milliseconds(backoff))))
    guard remaining >= wait + Self.minimumAttempt else { return nil }
    backoff = min(backoff * 2, Self.maximumBackoff)
    return wait
  }

  /// One push: the first attempt, then retries while they are worth it and fit before
  /// `deadline`. Each attempt gets the time left as its timeout; `wait` sleeps between
  /// attempts and says false when the loop is stopping. nil when the push was abandoned.
  static func push(
    deadline: ContinuousClock.Instant, now: () -> ContinuousClock.Instant,
    random: (ClosedRange<Int>) -> Int = { Int.random(in: $0) },
    attempt: (Duration) -> PushAttempt, wait: (Duration) -> Bool
  ) -> PushOutcome? {
    var schedule = RetrySchedule()
    var retries = 0
    var last: PushProblem?
    while true {
      let remaining = now().duration(to: deadline)
      if let last, remaining <= .zero { return .failed(last, retries: retries) }
      switch attempt(max(remaining, .milliseconds(1))) {
      case .accepted:
        return .success(retries: retries, after: last)
      case .abandoned:
        return nil
      case .problem(let problem):
        last = problem
        guard isRetryable(problem), let pause = schedule.nextWait(remaining: now().duration(to: deadline), random: random)
        else { return .failed(problem, retries: retries) }
        guard wait(pause) else { return nil }
        retries += 1
      }
    }
  }

  private static func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
  }
}

/// A push body: the exposition, made afresh for each attempt (a retry pushes the values
/// of its own moment) and streamed to libcurl a piece at a time — gzip-compressed as it
/// streams when configured — so a push holds what a scrape does: the samples and a piece.
struct PushBody: Sendable {
  let gzip: Bool
  /// Text 0.0.4, or the protobuf format while native histograms are on (`PushTarget.format`).
  let format: ExpositionFormat
  private let source: @Sendable () -> any BodyStream
  private let compress: @Sendable (any BodyStream) -> (any BodyStream)?

  init(
    gzip: Bool, format: ExpositionFormat = .text, source: @escaping @Sendable () -> any BodyStream,
    compress: @escaping @Sendable (any BodyStream) -> (any BodyStream)? = { GzipStream($0) }
  ) {
    self.gzip = gzip
    self.format = format
    self.source = source
    self.compress = compress
  }

  /// One attempt's body.
  func open() -> PushPayload {
    let plain = source()
    if gzip, let compressed = compress(plain) {
      return PushPayload(stream: compressed, format: format, gzipped: true, compressionFailed: false)
    }
    return PushPayload(stream: plain, format: format, gzipped: false, compressionFailed: gzip)
  }
}

/// One attempt's body stream and how it is encoded.
struct PushPayload {
  let stream: any BodyStream
  let format: ExpositionFormat
  let gzipped: Bool
  /// gzip was configured but igzip failed (out of memory): the body goes uncompressed and
  /// says so, since a gateway told `Content-Encoding: gzip` would reject it.
  let compressionFailed: Bool

  /// The length is not known before the body is made: chunked transfer coding.
  var headers: [String] {
    ["Content-Type: \(format.contentType)", "Transfer-Encoding: chunked"] + (gzipped ? ["Content-Encoding: gzip"] : [])
  }
}

/// At most one line per interval.
struct LogRateLimit {
  let interval: Double
  private var last = Date.distantPast

  init(interval: Double) { self.interval = interval }

  /// True, and starts a new interval, when a line may be logged at `now`.
  mutating func allows(_ now: Date) -> Bool {
    guard now.timeIntervalSince(last) >= interval else { return false }
    last = now
    return true
  }

  /// The next line is allowed whenever it comes.
  mutating func reset() { last = .distantPast }
}
