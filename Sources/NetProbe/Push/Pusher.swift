public import Logging
import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// Pushes the exposition to a Pushgateway on a thread of its own, every push interval.
///
/// A push replaces the group (`PUT`); failures are retried with exponential backoff and
/// jitter, but never past the push timeout, which the config keeps shorter than the
/// interval, so pushes never overlap. Nothing else in the agent waits on the network: the
/// probe engines and `/metrics` only share the registry, which renders in milliseconds.
public final class Pusher: ConfigSubscriber {
  private let registry: MetricsRegistry
  private let logger: Logger
  private let stats = PushStats()
  private let running = Mutex<PushLoop?>(nil)

  public init(registry: MetricsRegistry, logger: Logger) {
    self.registry = registry
    self.logger = logger
  }

  /// The push metrics, registered by the caller so they are pushed too.
  public var metrics: any MetricsCollector { stats }

  /// Starts, restarts or stops the loop to match `config.push`. An unchanged push section
  /// leaves the running loop alone.
  public func apply(_ config: NetProbeConfig) {
    let target = config.push.map { PushTarget($0) }
    let previous: PushLoop? = running.withLock { current in
      if current?.target == target { return nil }
      let old = current
      current = target.map { PushLoop(target: $0, registry: registry, stats: stats, logger: logger) }
      current?.start()
      return old
    }
    previous?.stop(deleteGroup: false)
    stats.setConfigured(target != nil)
  }

  /// Stops pushing; with `delete_on_shutdown`, deletes the group from the gateway first.
  public func stop() {
    let loop = running.withLock { current in
      defer { current = nil }
      return current
    }
    loop?.stop(deleteGroup: loop?.target.config.deleteOnShutdown ?? false)
  }
}

/// A push configuration with its grouping resolved (the host name as the default instance).
struct PushTarget: Equatable, Sendable {
  let config: PushConfig
  let groupURL: String

  init(_ config: PushConfig) {
    self.config = config
    let instance = config.instance ?? HostName.current()
    let labels = (instance.isEmpty ? [] : [Label("instance", instance)]) + config.grouping
    groupURL = PushURL.group(base: config.url, job: config.job, labels: labels)
  }
}

/// The thread that pushes for one configuration; replaced as a whole when it changes.
final class PushLoop: Sendable {
  let target: PushTarget
  private let registry: MetricsRegistry
  private let stats: PushStats
  private let logger: Logger
  private let wake = DispatchSemaphore(value: 0)
  private let stopping = Atomic<Bool>(false)
  private let finished = DispatchSemaphore(value: 0)
  /// When the thread should delete the group on its way out.
  private let deleteOnExit = Atomic<Bool>(false)

  init(target: PushTarget, registry: MetricsRegistry, stats: PushStats, logger: Logger) {
    self.target = target
    self.registry = registry
    self.stats = stats
    var logger = logger
    logger[metadataKey: "url"] = "\(target.groupURL)"
    self.logger = logger
  }

  func start() {
    SystemThread.start(name: "push") { [self] in
      run()
      finished.signal()
    }
  }

  /// Ends the loop: an in-flight push may finish (it is bounded by the push timeout), then
  /// the optional DELETE runs, also within the timeout.
  func stop(deleteGroup: Bool) {
    deleteOnExit.store(deleteGroup, ordering: .releasing)
    stopping.store(true, ordering: .releasing)
    wake.signal()
    let limit = target.config.timeout * (deleteGroup ? 2 : 1) + .milliseconds(500)
    _ = finished.wait(timeout: .now() + .nanoseconds(Int(limit.components.seconds) * 1_000_000_000 + Int(limit.components.attoseconds / 1_000_000_000)))
  }

  private var isStopping: Bool { stopping.load(ordering: .acquiring) }

  private func run() {
    let session: CurlSession
    do {
      session = try CurlSession()
    } catch {
      logger.error("cannot start pushing", metadata: ["error": "\(error)"])
      return
    }
    let clock = ContinuousClock()
    var failureLog = FailureLog()
    while !isStopping {
      let started = clock.now
      let outcome = pushOnce(session, deadline: started + target.config.timeout)
      let duration = clock.now - started
      stats.record(outcome, duration: duration.seconds, at: Date().timeIntervalSince1970)
      failureLog.report(outcome, logger: logger)
      sleep(until: started + target.config.interval, clock: clock)
    }
    if deleteOnExit.load(ordering: .acquiring) {
      let result = perform(session, method: "DELETE", body: [], timeout: target.config.timeout)
      switch result {
      case .success(let response) where (200..<300).contains(response.status):
        logger.info("deleted the push group on shutdown")
      case .success(let response):
        logger.warning("deleting the push group failed", metadata: ["status": "\(response.status)", "body": "\(PushOutcome.excerpt(response.body))"])
      case .failure(let failure):
        logger.warning("deleting the push group failed", metadata: ["error": "\(failure)"])
      }
    }
  }

  /// One push with its retries, all before `deadline`.
  private func pushOnce(_ session: CurlSession, deadline: ContinuousClock.Instant) -> PushOutcome {
    var body = registry.render()
    if target.config.gzip, let compressed = Gzip.compress(body) { body = compressed }
    var backoff = Duration.milliseconds(200)
    var retries = 0
    while true {
      let remaining = ContinuousClock.now.duration(to: deadline)
      guard remaining > .milliseconds(50) else { return .failure("push timeout reached", retries: retries) }
      let outcome: PushOutcome
      switch perform(session, method: "PUT", body: body, timeout: remaining) {
      case .success(let response) where (200..<300).contains(response.status):
        return .success(retries: retries)
      case .success(let response):
        outcome = .rejected(status: response.status, body: response.body, retries: retries)
        // 4xx other than 408/429: the gateway will say the same again; do not insist.
        if (400..<500).contains(response.status) && response.status != 408 && response.status != 429 { return outcome }
      case .failure(let failure):
        outcome = .failure(failure.description, retries: retries)
      }
      // Full jitter: a random wait up to the backoff, so agents restarted together spread out.
      let wait = Duration.milliseconds(Int.random(in: 50...max(50, Int(backoff.seconds * 1000))))
      if isStopping || ContinuousClock.now.duration(to: deadline) < wait + .milliseconds(100) { return outcome }
      _ = self.wake.wait(timeout: .now() + .milliseconds(Int(wait.seconds * 1000)))
      if isStopping { return outcome }
      backoff = min(backoff * 2, .seconds(5))
      retries += 1
    }
  }

  private func perform(_ session: CurlSession, method: String, body: [UInt8], timeout: Duration) -> Result<CurlResponse, CurlFailure> {
    let config = target.config
    var headers = ["Content-Type: \(Exposition.contentType)"]
    if config.gzip && method == "PUT" { headers.append("Content-Encoding: gzip") }
    var request = CurlRequest(method: method, url: target.groupURL, body: body, headers: headers,
                              connectTimeout: min(timeout, .seconds(5)), totalTimeout: timeout)
    if let auth = config.basicAuth {
      request.username = auth.username
      do {
        request.password = String(decoding: try FileContents.read(auth.passwordFile), as: UTF8.self).trimming(\.isNewline)
      } catch {
        return .failure(CurlFailure(code: -1, message: "cannot read password_file \(auth.passwordFile): \(error)"))
      }
    }
    request.caFile = config.tls.caFile
    request.certFile = config.tls.certFile
    request.keyFile = config.tls.keyFile
    request.insecureSkipVerify = config.tls.insecureSkipVerify
    request.proxy = config.proxyURL
    return session.perform(request)
  }

  private func sleep(until instant: ContinuousClock.Instant, clock: ContinuousClock) {
    let remaining = clock.now.duration(to: instant)
    guard remaining > .zero, !isStopping else { return }
    _ = wake.wait(timeout: .now() + .milliseconds(Int(remaining.seconds * 1000)))
  }
}

/// How one push ended.
enum PushOutcome: Equatable {
  case success(retries: Int)
  /// The gateway answered, but not 2xx.
  case rejected(status: Int, body: [UInt8], retries: Int)
  /// No answer: connection refused, timeout, TLS failure, unreadable password file.
  case failure(String, retries: Int)

  var retries: Int {
    switch self {
    case .success(let retries), .rejected(_, _, let retries), .failure(_, let retries): retries
    }
  }

  var isSuccess: Bool {
    if case .success = self { return true }
    return false
  }

  /// The first line of a gateway's answer, for a log line.
  static func excerpt(_ body: [UInt8]) -> String {
    String(decoding: body.prefix(512), as: UTF8.self).trimmingWhitespace()
  }
}

/// Logs the first failure at once, repeats at most once a minute while failures go on,
/// and logs the recovery: a gateway down for a day gives a few dozen lines, not 5,760.
struct FailureLog {
  private var failingSince: Date?
  private var lastLogged = Date.distantPast
  private var suppressed = 0

  mutating func report(_ outcome: PushOutcome, logger: Logger, now: Date = Date()) {
    switch outcome {
    case .success:
      if let since = failingSince {
        logger.info("push recovered", metadata: ["failing_for": "\(Int(now.timeIntervalSince(since)))s"])
      }
      failingSince = nil
      suppressed = 0
    case .rejected, .failure:
      if failingSince == nil { failingSince = now }
      guard now.timeIntervalSince(lastLogged) >= 60 else {
        suppressed += 1
        return
      }
      var metadata: Logger.Metadata = ["retries": "\(outcome.retries)"]
      if suppressed > 0 { metadata["suppressed_failures"] = "\(suppressed)" }
      switch outcome {
      case .rejected(let status, let body, _):
        metadata["status"] = "\(status)"
        metadata["body"] = "\(PushOutcome.excerpt(body))"
        logger.warning("push rejected by the gateway", metadata: metadata)
      case .failure(let message, _):
        metadata["error"] = "\(message)"
        logger.warning("push failed", metadata: metadata)
      case .success:
        break
      }
      lastLogged = now
      suppressed = 0
    }
  }
}

/// The push metrics: results, retries, the last success and the last push's duration.
final class PushStats: MetricsCollector {
  private struct Counts {
    var configured = false
    var successes: UInt64 = 0
    var failures: UInt64 = 0
    var retries: UInt64 = 0
    var lastSuccess: Double?
    var lastDuration: Double?
  }
  private let counts = Mutex(Counts())

  func setConfigured(_ configured: Bool) { counts.withLock { $0.configured = configured } }

  func record(_ outcome: PushOutcome, duration: Double, at time: Double) {
    counts.withLock { counts in
      if outcome.isSuccess {
        counts.successes += 1
        counts.lastSuccess = time
      } else {
        counts.failures += 1
      }
      counts.retries += UInt64(outcome.retries)
      counts.lastDuration = duration
    }
  }

  func collect(into exposition: inout Exposition) {
    let snapshot = counts.withLock { $0 }
    guard snapshot.configured || snapshot.successes + snapshot.failures > 0 else { return }
    exposition.add(Catalogue.pushes, LabelSet([("result", "failure")]), Double(snapshot.failures))
    exposition.add(Catalogue.pushes, LabelSet([("result", "success")]), Double(snapshot.successes))
    exposition.add(Catalogue.pushRetries, .empty, Double(snapshot.retries))
    if let lastSuccess = snapshot.lastSuccess { exposition.add(Catalogue.pushLastSuccessTimestamp, .empty, lastSuccess) }
    if let lastDuration = snapshot.lastDuration { exposition.add(Catalogue.pushDuration, .empty, lastDuration) }
  }
}
