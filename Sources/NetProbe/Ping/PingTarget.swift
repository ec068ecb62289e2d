import Synchronization

/// One configured target while it runs: its configuration, its slot in the engine, and
/// its statistics behind a lock shared by its event loop (which updates them per probe)
/// and the scrape (which reads them).
final class PingTarget: Sendable {
  /// The settings in force. A reload that keeps what the target measures replaces them in
  /// place (`update`), so the loops, the tracer and the scrape keep the same object and
  /// its counters.
  private let settings: Mutex<TargetConfig>
  /// The index probes carry in their payload to find their target again.
  let slot: UInt32
  let state: Mutex<PingTargetState>

  init(config: TargetConfig, slot: UInt32, rttBuckets: [Double]) {
    settings = Mutex(config)
    self.slot = slot
    let options = config.options
    state = Mutex(PingTargetState(
      ledger: ProbeLedger(capacity: Self.ledgerCapacity(options)),
      window: ProbeWindow(capacity: options.window),
      histogram: Histogram(upperBounds: rttBuckets),
      address: config.address))
  }

  var config: TargetConfig { settings.withLock { $0 } }

  /// Enough ring entries for every probe that can be in flight, plus memory for late replies.
  static func ledgerCapacity(_ options: ProbeOptions) -> Int {
    let inFlight = Int((options.timeout / options.interval).rounded(.up)) + 1
    return max(16, inFlight * 4)
  }

  /// The socket options this target needs; targets that share them share a socket.
  var socketOptions: ICMPSocketOptions { config.options.socketOptions }

  /// Whether a target of a new configuration keeps this one's counters: it measures the
  /// same thing (`TargetConfig.measuresSameAs`).
  func canCarryOver(to other: TargetConfig) -> Bool {
    config.measuresSameAs(other)
  }

  /// Takes the settings of a reloaded target that measures the same thing. Counters, the
  /// RTT jitter and the probes in flight stay; the window keeps its newest outcomes when
  /// its size changes; the ledger grows when the new timeout / interval can have more
  /// probes in flight; the histogram starts afresh only when its buckets change (its
  /// series are others then). Returns whether the interval changed, so the loop can
  /// reschedule the target at once instead of after one more old interval.
  func update(to new: TargetConfig, rttBuckets: [Double]) -> Bool {
    precondition(config.measuresSameAs(new), "another measurement needs a new PingTarget")
    let old = settings.withLock { settings in
      defer { settings = new }
      return settings
    }
    state.withLock { state in
      let capacity = Self.ledgerCapacity(new.options)
      if capacity > state.ledger.capacity { state.ledger.grow(to: capacity) }
      if new.options.window != state.window.capacity { state.window.resize(to: new.options.window) }
      if state.histogram.upperBounds != rttBuckets { state.histogram = Histogram(upperBounds: rttBuckets) }
    }
    return old.options.interval != new.options.interval
  }
}

/// Everything the engine knows about one target.
struct PingTargetState: Sendable {
  var ledger: ProbeLedger
  var window: ProbeWindow
  var histogram: Histogram
  var jitter = SmoothedJitter()
  /// The address probed; nil until a DNS name first resolves.
  var address: IPAddress?
  var socketKind: ICMPSocketKind?
  var sent: UInt64 = 0
  var received: UInt64 = 0
  var duplicates: UInt64 = 0
  var late: UInt64 = 0
  var sendErrors: [String: UInt64] = [:]
  var lastReplyTTL: Int?
  var dnsFailures: UInt64 = 0
  /// The last DNS error, while lookups fail.
  var dnsError: String?
}
