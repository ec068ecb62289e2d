import Synchronization

/// One configured target while it runs: its configuration, its slot in the engine, and
/// its statistics behind a lock shared by its event loop (which updates them per probe)
/// and the scrape (which reads them).
final class PingTarget: Sendable {
  let config: TargetConfig
  /// The index probes carry in their payload to find their target again.
  let slot: UInt32
  let state: Mutex<PingTargetState>

  init(config: TargetConfig, slot: UInt32, rttBuckets: [Double]) {
    self.config = config
    self.slot = slot
    let options = config.options
    // Enough ring entries for every probe that can be in flight, plus memory for late replies.
    let inFlight = Int((options.timeout / options.interval).rounded(.up)) + 1
    state = Mutex(PingTargetState(
      ledger: ProbeLedger(capacity: max(16, inFlight * 4)),
      window: ProbeWindow(capacity: options.window),
      histogram: Histogram(upperBounds: rttBuckets),
      address: config.address))
  }

  /// The socket options this target needs; targets that share them share a socket.
  var socketOptions: ICMPSocketOptions { config.options.socketOptions }

  /// Whether a target of a new configuration keeps this one's counters: same name, host
  /// and options (only where it sits in the file may differ), same histogram buckets.
  func canCarryOver(to other: TargetConfig, rttBuckets: [Double]) -> Bool {
    config.name == other.name && config.host == other.host && config.options == other.options
      && state.withLock { $0.histogram.upperBounds } == rttBuckets
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
