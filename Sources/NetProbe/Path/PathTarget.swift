import Synchronization

/// A traced target: its configuration (the ping target's: the tracer probes the same
/// address with the same options), its slot in the tracer, its flow identity, and what
/// the rounds found.
final class PathTarget: Sendable {
  /// The tracer's slot for this target, with `ProbePayload.traceSlotFlag` set.
  let slot: UInt32
  /// The checksum every probe of this target's rounds carries (Paris traceroute).
  let flow: UInt16
  let state: Mutex<PathState>
  /// The target's configuration as of the last reload that kept this path: one whose
  /// identity or traced path changed gets a new PathTarget instead (`canCarryOver`), so a
  /// round in progress keeps the hop count it was sized for.
  private let current: Mutex<TargetConfig>

  init(config: TargetConfig, slot: UInt32) {
    self.slot = slot | ProbePayload.traceSlotFlag
    flow = UInt16.random(in: 1...UInt16.max)
    state = Mutex(PathState(trace: config.options.trace))
    current = Mutex(config)
  }

  var config: TargetConfig { current.withLock { $0 } }
  var trace: TraceOptions { config.options.trace }

  /// Whether a target of a new configuration keeps this one's path and history: it
  /// measures the same thing (`TargetConfig.measuresSameAs`) and traces the same path
  /// (`TraceOptions.tracesSamePathAs`).
  func canCarryOver(to other: TargetConfig) -> Bool {
    let config = config
    return config.measuresSameAs(other) && config.options.trace.tracesSamePathAs(other.options.trace)
  }

  /// Takes a reloaded target's settings (see `canCarryOver`); the hops found, their history
  /// and the change count stay. Returns whether the trace interval changed (the tracer then
  /// reschedules the target).
  func update(to config: TargetConfig) -> Bool {
    precondition(canCarryOver(to: config), "a different path needs a new PathTarget")
    let old = current.withLock { current in
      defer { current = config }
      return current.options.trace
    }
    let trace = config.options.trace
    if old.confirmRounds != trace.confirmRounds {
      state.withLock { $0.detector.confirmRounds = max(1, trace.confirmRounds) }
    }
    return old.interval != trace.interval
  }
}

/// What the rounds of one target found.
struct PathState: Sendable {
  var detector: PathChangeDetector
  /// RTT and loss per TTL over the last rounds; hops[0] is TTL 1.
  var hops: [HopHistory]
  var lastRound: TraceRound?
  var rounds: UInt64 = 0
  var lastRoundDuration: Double?
  var lastChangeTime: Double?
  /// Rounds that drew a Destination Unreachable, by code.
  var unreachable: [UInt8: UInt64] = [:]
  var mtu: Int?
  /// Probes the kernel refused at sendto, by errno name (added as each round is published,
  /// after a new address has reset the state, so they stay with the address they were for).
  var sendErrors: [String: UInt64] = [:]
  /// The address the rounds were traced to: a new address starts a new path.
  var tracedAddress: IPAddress?

  init(trace: TraceOptions) {
    detector = PathChangeDetector(confirmRounds: trace.confirmRounds)
    hops = [HopHistory](repeating: HopHistory(), count: trace.maxHops)
  }

  /// Takes in a finished round to `address`; true when it confirmed a path change.
  /// `wallClock`: Unix time now, for the last change's timestamp.
  mutating func record(
    _ finished: TraceRound, address: IPAddress, duration: Double, wallClock: Double,
    dontFragment: Bool
  ) -> Bool {
    if tracedAddress != address {
      // A new address (DNS) is a new path to learn, not a change of this one: nothing of
      // the old one's (its series carry the old address) is kept.
      self = PathState(confirmRounds: detector.confirmRounds, responderLifetime: detector.responderLifetime, maxHops: hops.count)
      tracedAddress = address
    }
    let round = finished.trimmed()
    rounds += 1
    lastRoundDuration = duration
    lastRound = round
    for code in round.unreachableCodes { unreachable[code, default: 0] += 1 }
    if dontFragment {
      // A round that reached the destination with probes of full size and no MTU report
      // shows the path no longer limits them: the gauge goes rather than freeze.
      if let mtu = round.mtu { self.mtu = mtu } else if round.destinationTTL != nil { self.mtu = nil }
    }
    let before = detector.confirmed
    let changed = detector.observe(round.identity)
    if changed {
      lastChangeTime = wallClock
      // A hop whose routers changed starts its RTT and loss afresh: the old router's
      // replies are not the new one's.
      let after = detector.confirmed?.hops ?? []
      for index in hops.indices {
        let old = before.flatMap { index < $0.hops.count ? $0.hops[index] : nil } ?? []
        let new = index < after.count ? after[index] : []
        if old != new { hops[index] = HopHistory(capacity: hops[index].capacity) }
      }
    }
    // Loss per hop of the confirmed path, also where nothing answered this round (past
    // the last hop that did): probes sent there without reply are lost.
    let length = min(detector.confirmed?.hops.count ?? 0, hops.count, round.hops.count)
    for index in 0..<length where round.hops[index].probesSent > 0 {
      hops[index].record(sent: round.hops[index].probesSent, rtts: round.hops[index].responders.flatMap(\.rtts))
    }
    return changed
  }

  private init(confirmRounds: Int, responderLifetime: Int, maxHops: Int) {
    detector = PathChangeDetector(confirmRounds: confirmRounds, responderLifetime: responderLifetime)
    hops = [HopHistory](repeating: HopHistory(), count: maxHops)
  }
}
