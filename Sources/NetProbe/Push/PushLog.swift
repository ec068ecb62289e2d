import FoundationEssentials
import Logging

/// The push loop's log lines, rate-limited: a gateway down for a day gives a few dozen
/// lines, not 5,760, and a flapping one at most three a minute (for one kind of failure).
///
/// - Failures (and non-2xx answers a retry cured, with the gateway's answer): the first at
///   once, then at most one a minute with the count of those not logged, for each kind of
///   failure: no answer, or each HTTP status. A gateway that stops timing out and starts
///   answering 500 is news, logged at once with its answer.
/// - Recoveries: at most one a minute. A logged recovery ends the outage, so the first
///   failure of the next one is logged at once; failures not logged meanwhile are counted
///   on the recovery line.
struct FailureLog {
  private var failingSince: Date?
  /// By kind of failure (see `kind`).
  private var failureLimits: [String: LogRateLimit] = [:]
  private var recoveryLimit = LogRateLimit(interval: 60)
  private var suppressedFailures = 0
  private var suppressedRecoveries = 0

  mutating func report(_ outcome: PushOutcome, logger: Logger, now: Date = Date()) {
    if outcome.succeeded {
      if let since = failingSince {
        failingSince = nil
        recovered(after: now.timeIntervalSince(since), logger: logger, now: now)
      } else if let problem = outcome.problem {
        failed(problem, retries: outcome.retries, cured: true, logger: logger, now: now)
      }
    } else {
      if failingSince == nil { failingSince = now }
      failed(outcome.problem ?? .failure("unknown"), retries: outcome.retries, cured: false, logger: logger, now: now)
    }
  }

  private mutating func failed(_ problem: PushProblem, retries: Int, cured: Bool, logger: Logger, now: Date) {
    let kind = Self.kind(problem)
    guard failureLimits[kind, default: LogRateLimit(interval: 60)].allows(now) else {
      suppressedFailures += 1
      return
    }
    var metadata: Logger.Metadata = ["retries": "\(retries)"]
    if suppressedFailures > 0 { metadata["suppressed_failures"] = "\(suppressedFailures)" }
    suppressedFailures = 0
    switch problem {
    case .rejected(let status, let body):
      metadata["status"] = "\(status)"
      metadata["body"] = "\(PushOutcome.excerpt(body))"
      logger.warning(cured ? "push accepted after the gateway rejected an attempt" : "push rejected by the gateway", metadata: metadata)
    case .failure(let message):
      metadata["error"] = "\(message)"
      logger.warning(cured ? "push accepted after a failed attempt" : "push failed", metadata: metadata)
    }
  }

  private mutating func recovered(after seconds: Double, logger: Logger, now: Date) {
    guard recoveryLimit.allows(now) else {
      suppressedRecoveries += 1
      return
    }
    var metadata: Logger.Metadata = ["failing_for": "\(Int(seconds))s"]
    if suppressedFailures > 0 { metadata["suppressed_failures"] = "\(suppressedFailures)" }
    if suppressedRecoveries > 0 { metadata["suppressed_recoveries"] = "\(suppressedRecoveries)" }
    logger.info("push recovered", metadata: metadata)
    suppressedFailures = 0
    suppressedRecoveries = 0
    failureLimits.removeAll()
  }

  /// What makes one failure news after another: no answer at all, or the HTTP status.
  private static func kind(_ problem: PushProblem) -> String {
    switch problem {
    case .failure: "failure"
    case .rejected(let status, _): "status \(status)"
    }
  }
}
