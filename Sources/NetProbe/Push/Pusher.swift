public import Logging
import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// Pushes the exposition to a Pushgateway on a thread of its own, every push interval.
///
/// A push replaces the group (`PUT`); failures are retried with exponential backoff and
/// jitter (`RetrySchedule`), but never past the push timeout, which the config keeps
/// shorter than the interval, so pushes never overlap. Nothing else in the agent waits on
/// the network: the probe engines and `/metrics` only share the registry, which renders in
/// milliseconds.
public final class Pusher: ConfigSubscriber {
  private let registry: MetricsRegistry
  private let logger: Logger
  private let stats = PushStats()
  /// The running loop; taken only for a moment, never while a loop stops.
  private let running = Mutex<PushLoop?>(nil)
  /// Serialises `apply` calls, across the old loop's stop: an old loop is gone before its
  /// successor starts. `stop` does not take it, so shutdown never waits behind a reload's
  /// DELETE of the group it leaves.
  private let applying = Mutex(())
  /// Set by `stop`: no loop starts after it.
  private let stopped = Atomic<Bool>(false)

  public init(registry: MetricsRegistry, logger: Logger) {
    self.registry = registry
    self.logger = logger
  }

  /// The push metrics, registered by the caller so they are pushed too.
  public var metrics: any MetricsCollector { stats }

  /// Loads libcurl and runs curl_global_init when `config` pushes; `main` calls it with
  /// the first configuration, before any thread starts. A failure is logged here and then
  /// counted as a failed push every interval.
  public static func prepare(for config: NetProbeConfig, logger: Logger) {
    guard config.push != nil else { return }
    do {
      try Curl.load()
    } catch {
      logger.error(
        "cannot load libcurl; every push will fail until it is installed and the agent restarted", metadata: ["error": "\(error.message)"])
    }
  }

  /// Starts, restarts or stops the loop to match `config.push`. An unchanged push section
  /// leaves the running loop alone. A changed one stops the old loop (abandoning a push in
  /// flight) before the new one starts; with the old `delete_on_shutdown`, a group the new
  /// configuration no longer pushes to (another URL or grouping key, or no `push`) is
  /// deleted from the gateway, within 3 s, so it does not linger there forever.
  public func apply(_ config: NetProbeConfig) {
    let format = PushTarget.format(for: config)
    let target = config.push.map { PushTarget($0, format: format) }
    applying.withLock { _ in
      guard !stopped.load(ordering: .acquiring) else { return }
      // .none: the push section did not change; .some(old): the loop to replace, if any.
      let replaced: PushLoop?? = running.withLock { current in
        guard current?.target != target else { return .none }
        defer { current = nil }
        return .some(current)
      }
      guard case .some(let old) = replaced else { return }
      if let old {
        let orphaned = old.target.config.deleteOnShutdown && old.target.groupURL != target?.groupURL
        old.stop(delete: orphaned ? .replaced : nil)
      }
      stats.setConfigured(interval: target?.config.interval)
      guard let target else { return }
      // On the reload that first adds push, libcurl is set up here, before its loop
      // starts (see Curl.load); a failure is counted by the loop.
      try? Curl.load()
      let loop = PushLoop(target: target, registry: registry, stats: stats, logger: logger)
      running.withLock { current in
        guard !stopped.load(ordering: .acquiring) else { return }
        loop.start()
        current = loop
      }
    }
  }

  /// Stops pushing; with `delete_on_shutdown`, deletes the group from the gateway (within
  /// 3 s). An in-flight push is abandoned at once, so stopping takes well under the
  /// 10 s the systemd unit and the DaemonSet allow.
  public func stop() {
    stopped.store(true, ordering: .releasing)
    let loop = running.withLock { current in
      defer { current = nil }
      return current
    }
    if let loop { loop.stop(delete: loop.target.config.deleteOnShutdown ? .shutdown : nil) }
  }
}

/// A push configuration with its grouping resolved (the host name as the default instance).
struct PushTarget: Equatable, Sendable {
  let config: PushConfig
  let groupURL: String
  /// What the bodies are written in (a change restarts the loop, as any change does).
  let format: ExpositionFormat

  init(_ config: PushConfig, format: ExpositionFormat = .text, hostName: String = HostName.current()) {
    self.config = config
    self.format = format
    let instance = config.instance ?? hostName
    let labels = (instance.isEmpty ? [] : [Label("instance", instance)]) + config.grouping
    groupURL = PushURL.group(base: config.url, job: config.job, labels: labels)
  }

  /// Native histograms exist only in protobuf: pushes use it when they are on, so the
  /// gateway (which keeps them, as 1.5.1 was seen to) hands them on to Prometheus; text
  /// otherwise, as before they existed.
  static func format(for config: NetProbeConfig) -> ExpositionFormat {
    config.ping.nativeHistograms == nil ? .text : .protobuf
  }

  /// The request for one attempt, with the password read from its file now (so a rotated
  /// secret needs no reload); nil body for a DELETE.
  func request(method: String, body: PushBody?, timeout: Duration) -> Result<CurlRequest, CurlFailure> {
    let payload = body?.open()
    var request = CurlRequest(
      method: method, url: groupURL, body: payload?.stream,
      headers: payload?.headers ?? [],
      connectTimeout: min(timeout, .seconds(5)), totalTimeout: timeout)
    if let body, let payload {
      request.restartBody = {
        let again = body.open()
        return again.gzipped == payload.gzipped ? again.stream : nil
      }
    }
    if let auth = config.basicAuth {
      request.username = auth.username
      do {
        request.password = try Self.password(fromFile: auth.passwordFile)
      } catch {
        return .failure(CurlFailure(code: -1, message: "cannot read password_file \(auth.passwordFile): \(error)"))
      }
    }
    // libcurl opens these itself, blocking, and reads them whole: a file swapped for a FIFO
    // or a huge one since the configuration was loaded is refused here instead.
    for file in [config.tls.caFile, config.tls.certFile, config.tls.keyFile].compactMap({ $0 }) {
      if let problem = ConfigLoader.refusal(of: file) { return .failure(CurlFailure(code: -1, message: problem)) }
    }
    request.caFile = config.tls.caFile
    request.certFile = config.tls.certFile
    request.keyFile = config.tls.keyFile
    request.insecureSkipVerify = config.tls.insecureSkipVerify
    request.proxy = config.proxyURL
    return .success(request)
  }

  /// The file's text without the line breaks around it (the one an editor or `echo`
  /// adds); spaces are kept, they may be part of the password.
  static func password(fromFile path: String) throws(FileReadError) -> String {
    String(decoding: try FileContents.readRegularFile(path), as: UTF8.self).trimming(\.isNewline)
  }
}

/// The thread that pushes for one configuration; replaced as a whole when it changes.
final class PushLoop: Sendable {
  /// Why the group is deleted as the loop stops.
  enum Deletion: Sendable {
    case shutdown
    /// A reload moved the push to another group or removed it.
    case replaced
  }

  /// The longest a DELETE may take, whatever the push timeout: stopping must end well
  /// within systemd's TimeoutStopSec and Kubernetes' grace period (10 s in deploy/).
  static let deleteTimeout = Duration.seconds(3)
  /// How long `stop` waits for the thread besides the DELETE: a transfer in flight is
  /// abandoned within 100 ms; only rendering a very large exposition takes longer.
  static let stopGrace = Duration.seconds(1)

  let target: PushTarget
  private let registry: MetricsRegistry
  private let stats: PushStats
  private let logger: Logger
  private let wake = DispatchSemaphore(value: 0)
  private let thread = DedicatedThread(name: "push")
  /// What the thread should delete on its way out, if anything.
  private let deletion = Mutex<Deletion?>(nil)

  init(target: PushTarget, registry: MetricsRegistry, stats: PushStats, logger: Logger) {
    self.target = target
    self.registry = registry
    self.stats = stats
    var logger = logger
    logger[metadataKey: "url"] = "\(target.groupURL)"
    self.logger = logger
  }

  func start() {
    thread.start { [self] in run() }
  }

  /// Ends the loop and waits for it: a push in flight is abandoned, then the optional
  /// DELETE runs, bounded by `deleteTimeout`.
  func stop(delete: Deletion?) {
    deletion.withLock { $0 = delete }
    thread.requestStop()
    wake.signal()
    let limit = Self.stopGrace + (delete == nil ? .zero : deleteTimeout)
    if !thread.waitUntilFinished(timeout: .milliseconds(Self.milliseconds(limit))) {
      logger.warning("the push thread did not stop in time; leaving it", metadata: ["waited": "\(limit)"])
    }
  }

  private var isStopping: Bool { thread.isStopping }

  private var deleteTimeout: Duration { min(target.config.timeout, Self.deleteTimeout) }

  private func run() {
    let clock = ContinuousClock()
    var session: CurlSession?
    var failureLog = FailureLog()
    while !isStopping {
      let started = clock.now
      let outcome: PushOutcome?
      switch open(&session) {
      case .success(let open): outcome = push(open, deadline: started + target.config.timeout)
      case .failure(let failure): outcome = .failed(.failure(failure.description))
      }
      // An abandoned push (the loop is stopping) is neither a success nor a failure.
      if let outcome {
        stats.record(outcome, duration: (clock.now - started).seconds, at: Date().timeIntervalSince1970)
        failureLog.report(outcome, logger: logger)
      }
      sleep(until: started + target.config.interval, clock: clock)
    }
    if let reason = deletion.withLock({ $0 }) { deleteGroup(&session, reason: reason) }
  }

  /// The session, made on first use; without libcurl every push fails with its load error.
  private func open(_ session: inout CurlSession?) -> Result<CurlSession, CurlFailure> {
    if let session { return .success(session) }
    do {
      let made = try CurlSession()
      session = made
      return .success(made)
    } catch {
      return .failure(error)
    }
  }

  /// One push with its retries, all before `deadline`; nil when abandoned.
  private func push(_ session: CurlSession, deadline: ContinuousClock.Instant) -> PushOutcome? {
    let registry = self.registry
    let format = target.format
    let body = PushBody(gzip: target.config.gzip, format: format, source: { registry.stream(as: format.encoder()) })
    return RetrySchedule.push(
      deadline: deadline, now: { ContinuousClock.now },
      attempt: { timeout in
        guard !isStopping else { return .abandoned }
        let result = target.request(method: "PUT", body: body, timeout: timeout)
          .flatMap { request in
            if body.gzip && !request.headers.contains("Content-Encoding: gzip") {
              logger.warning("gzip failed; pushing this body uncompressed")
            }
            return session.perform(request, abandon: { isStopping })
          }
        switch result {
        case .success(let response) where (200..<300).contains(response.status): return .accepted
        case .success(let response): return .problem(.rejected(status: response.status, body: response.body))
        case .failure(let failure) where failure.code == CurlFailure.abandonedCode: return .abandoned
        case .failure(let failure): return .problem(.failure(failure.description))
        }
      },
      wait: { pause in
        _ = wake.wait(timeout: .now() + .milliseconds(Self.milliseconds(pause)))
        return !isStopping
      })
  }

  private func deleteGroup(_ session: inout CurlSession?, reason: Deletion) {
    let done =
      reason == .shutdown ? "deleted the push group on shutdown" : "deleted the push group the new configuration no longer pushes to"
    let failed = reason == .shutdown ? "deleting the push group on shutdown failed" : "deleting the old push group failed"
    let result = open(&session).flatMap { session in
      target.request(method: "DELETE", body: nil, timeout: deleteTimeout).flatMap { session.perform($0) }
    }
    switch result {
    case .success(let response) where (200..<300).contains(response.status):
      logger.info("\(done)")
    case .success(let response):
      logger.warning("\(failed)", metadata: ["status": "\(response.status)", "body": "\(PushOutcome.excerpt(response.body))"])
    case .failure(let failure):
      logger.warning("\(failed)", metadata: ["error": "\(failure)"])
    }
  }

  private func sleep(until instant: ContinuousClock.Instant, clock: ContinuousClock) {
    let remaining = clock.now.duration(to: instant)
    guard remaining > .zero, !isStopping else { return }
    _ = wake.wait(timeout: .now() + .milliseconds(Self.milliseconds(remaining)))
  }

  private static func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
  }
}

/// The push metrics: results, retries, the last success, the last push's duration and the
/// configured interval.
final class PushStats: MetricsCollector {
  private struct Counts {
    /// The push interval in seconds while push is configured.
    var interval: Double?
    var successes: UInt64 = 0
    var failures: UInt64 = 0
    var retries: UInt64 = 0
    var lastSuccess: Double?
    var lastDuration: Double?
    /// How the last push ended, for the status page: nil before the first.
    var lastSucceeded: Bool?
    var lastProblem: PushProblem?
  }
  private let counts = Mutex(Counts())

  func setConfigured(interval: Duration?) { counts.withLock { $0.interval = interval?.seconds } }

  func record(_ outcome: PushOutcome, duration: Double, at time: Double) {
    counts.withLock { counts in
      if outcome.succeeded {
        counts.successes += 1
        counts.lastSuccess = time
      } else {
        counts.failures += 1
      }
      counts.retries += UInt64(outcome.retries)
      counts.lastDuration = duration
      counts.lastSucceeded = outcome.succeeded
      counts.lastProblem = outcome.succeeded ? nil : outcome.problem
    }
  }

  func collect(into exposition: inout Exposition) {
    let snapshot = counts.withLock { $0 }
    guard snapshot.interval != nil || snapshot.successes + snapshot.failures > 0 else { return }
    exposition.add(Catalogue.pushes, LabelSet([("result", "failure")]), Double(snapshot.failures))
    exposition.add(Catalogue.pushes, LabelSet([("result", "success")]), Double(snapshot.successes))
    exposition.add(Catalogue.pushRetries, .empty, Double(snapshot.retries))
    if let lastSuccess = snapshot.lastSuccess { exposition.add(Catalogue.pushLastSuccessTimestamp, .empty, lastSuccess) }
    if let lastDuration = snapshot.lastDuration { exposition.add(Catalogue.pushDuration, .empty, lastDuration) }
    if let interval = snapshot.interval { exposition.add(Catalogue.pushInterval, .empty, interval) }
  }
}

// MARK: Status page

extension PushStats: StatusProvider {
  /// The push figures the status page shows, read under the same lock as the metrics;
  /// none when push is not configured and never ran.
  func contribute(to status: inout StatusSnapshot) {
    let snapshot = counts.withLock { $0 }
    guard snapshot.interval != nil || snapshot.successes + snapshot.failures > 0 else { return }
    let problem: String? =
      switch snapshot.lastProblem {
      case .rejected(let status, let body)?: "HTTP \(status): \(PushOutcome.excerpt(body))"
      case .failure(let message)?: message
      case nil: nil
      }
    status.push = PushStatus(
      configured: snapshot.interval != nil, interval: snapshot.interval, successes: snapshot.successes,
      failures: snapshot.failures, lastSuccess: snapshot.lastSuccess, lastSucceeded: snapshot.lastSucceeded,
      lastError: problem)
  }
}
