import Synchronization

/// A traced target: the ping target it follows (for its address and options), its slot
/// in the tracer, its flow identity, and what the rounds found.
final class PathTarget: Sendable {
  let ping: PingTarget
  /// The tracer's slot for this target, with `ProbePayload.traceSlotFlag` set.
  let slot: UInt32
  /// The checksum every probe of this target's rounds carries (Paris traceroute).
  let flow: UInt16
  let state: Mutex<PathState>

  init(ping: PingTarget, slot: UInt32) {
    self.ping = ping
    self.slot = slot | ProbePayload.traceSlotFlag
    flow = UInt16.random(in: 1...UInt16.max)
    let trace = ping.config.options.trace
    state = Mutex(PathState(detector: PathChangeDetector(confirmRounds: trace.confirmRounds),
                            hops: [HopHistory](repeating: HopHistory(), count: trace.maxHops)))
  }

  var trace: TraceOptions { ping.config.options.trace }
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
  var unreachable: [UInt8: UInt64] = [:]
  var mtu: Int?
  /// The address the rounds were traced to: a new address starts a new path.
  var tracedAddress: IPAddress?
}
