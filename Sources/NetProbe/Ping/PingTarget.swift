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
  /// The series' label blocks, rendered when first scraped and again only when the
  /// address, socket kind or settings change: a scrape of 10,000 targets then escapes no
  /// label text at all.
  private let labelCache = Mutex<PingSeriesLabels?>(nil)

  init(config: TargetConfig, slot: UInt32, rttBuckets: [Double], native: NativeHistogramSettings? = nil) {
    settings = Mutex(config)
    self.slot = slot
    let options = config.options
    state = Mutex(
      PingTargetState(
        ledger: ProbeLedger(capacity: Self.ledgerCapacity(options)),
        window: ProbeWindow(capacity: options.window),
        histogram: Histogram(HistogramLayout(upperBounds: rttBuckets, native: native)),
        address: config.address))
  }

  var config: TargetConfig { settings.withLock { $0 } }

  /// Enough ring entries for every probe that can be in flight, plus memory for late replies.
  static func ledgerCapacity(_ options: ProbeOptions) -> Int {
    let inFlight = Int((options.timeout / options.interval).rounded(.up)) + 1
    return max(16, inFlight * 4)
  }

  /// The label blocks for the target's series at `address` with `socketKind`: the cached
  /// ones while they still describe it, else new ones, kept for the next scrape.
  func seriesLabels(address: IPAddress?, socketKind: ICMPSocketKind?) -> PingSeriesLabels {
    labelCache.withLock { cache in
      if let cached = cache, cached.address == address, cached.socketKind == socketKind { return cached }
      let made = PingSeriesLabels(config, address: address, socketKind: socketKind)
      cache = made
      return made
    }
  }

  /// Which optional series the target exports: from the cache, without copying the settings.
  var seriesChoice: SeriesChoice {
    labelCache.withLock { $0?.series } ?? config.options.series
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
  /// probes in flight; the histogram starts afresh only when its buckets or its native
  /// histogram's settings change (its series are others then). Returns whether the interval changed, so the loop can
  /// reschedule the target at once instead of after one more old interval.
  func update(to new: TargetConfig, rttBuckets: [Double], native: NativeHistogramSettings? = nil) -> Bool {
    precondition(config.measuresSameAs(new), "another measurement needs a new PingTarget")
    let old = settings.withLock { settings in
      defer { settings = new }
      return settings
    }
    labelCache.withLock { $0 = nil }
    state.withLock { state in
      let capacity = Self.ledgerCapacity(new.options)
      if capacity > state.ledger.capacity { state.ledger.grow(to: capacity) }
      if new.options.window != state.window.capacity { state.window.resize(to: new.options.window) }
      let layout = HistogramLayout(upperBounds: rttBuckets, native: native)
      if state.histogram.layout != layout { state.histogram = Histogram(layout) }
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

  /// Registers a probe about to be handed to the kernel; returns its sequence.
  mutating func beginProbe(sendTime: Int64, deadline: Int64) -> UInt32 {
    let (sequence, evicted) = ledger.send(sendTime: sendTime, deadline: deadline)
    if evicted { window.record(nil) }
    return sequence
  }

  /// Counts a probe once sendto was tried. One meaning of a failed send: a probe the
  /// kernel refused (EMSGSIZE under DF, EHOSTUNREACH, EAGAIN…) is a lost probe — it counts
  /// in `sent` and, at its deadline, as lost in the window — so `sent − received` and the
  /// loss gauge tell the same story, and a target that cannot be reached from here shows
  /// loss instead of freezing its gauges. `sendErrors` says why it never left. (No socket
  /// at all is no probe: nothing is registered then.)
  mutating func probeHandedOver(refused errno: String?) {
    sent += 1
    if let errno { sendErrors[errno, default: 0] += 1 }
  }

  /// A probe's deadline passed: lost if still unanswered.
  mutating func expire(sequence: UInt32, now: Int64) {
    if ledger.expire(sequence: sequence, now: now) { window.record(nil) }
  }

  /// Takes in a reply from `source` to probe `sequence`; the reason it is not counted for
  /// this target, if it is not.
  mutating func reply(
    sequence: UInt32, sendTime: Int64, receiveTime: Int64, now: Int64, source: IPAddress,
    payloadMatches: Bool, ttl: Int?
  ) -> UnexpectedReason? {
    guard source == address else { return .wrongSource }
    guard payloadMatches else { return .corrupt }
    switch ledger.reply(sequence: sequence, sendTime: sendTime, receiveTime: receiveTime, now: now) {
    case .inTime(let nanoseconds):
      let rtt = Double(nanoseconds) / 1e9
      received += 1
      window.record(rtt)
      histogram.record(rtt)
      jitter.record(rtt)
      lastReplyTTL = ttl
    case .late(let newlyLost):
      late += 1
      if newlyLost { window.record(nil) }
      lastReplyTTL = ttl
    case .duplicate:
      duplicates += 1
    case .notOurs:
      return .unknownProbe
    }
    return nil
  }
}

/// A target's rendered label sets for one address and socket kind, and what else its
/// series need from its settings, so that a scrape reads no configuration.
final class PingSeriesLabels: Sendable {
  let address: IPAddress?
  let socketKind: ICMPSocketKind?
  let series: SeriesChoice
  /// Whether the target was given by name (then it has DNS lookup failures).
  let named: Bool
  /// `target`, `host` and the custom labels, for the DNS failures counter and the send
  /// errors before an address; nil for a target given by address, which needs neither.
  let lookup: LabelSet?
  /// `target`, `host`, `address`, `family` and the custom labels; nil before an address.
  let target: LabelSet?
  /// The same with `socket`, for the info series.
  let info: LabelSet?
  private let config: TargetConfig

  init(_ config: TargetConfig, address: IPAddress?, socketKind: ICMPSocketKind?) {
    self.config = config
    self.address = address
    self.socketKind = socketKind
    series = config.options.series
    named = config.address == nil
    let custom = config.options.labels.map { ($0.name, $0.value) }
    lookup = named || address == nil ? Self.lookupLabels(config) : nil
    if let address {
      target = LabelSet(Self.base(config, address)).appending(custom)
      info = LabelSet(Self.base(config, address) + [("socket", socketKind?.rawValue ?? "")]).appending(custom)
    } else {
      target = nil
      info = nil
    }
  }

  /// The send error series' labels, by errno, made the first time each is scraped: a
  /// target that cannot send (no permission, no route) has one at every scrape.
  private let sendErrorLabels = Mutex<[String: LabelSet]>([:])

  /// The labels of a send error's series.
  func sendError(_ errno: String) -> LabelSet {
    guard let address else { return lookup ?? Self.lookupLabels(config) }
    return sendErrorLabels.withLock { made in
      if let labels = made[errno] { return labels }
      let labels = LabelSet(Self.base(config, address) + [("errno", errno)])
        .appending(config.options.labels.map { ($0.name, $0.value) })
      made[errno] = labels
      return labels
    }
  }

  private static func lookupLabels(_ config: TargetConfig) -> LabelSet {
    LabelSet([("target", config.name), ("host", config.host)]).appending(config.options.labels.map { ($0.name, $0.value) })
  }

  private static func base(_ config: TargetConfig, _ address: IPAddress) -> [(String, String)] {
    [("target", config.name), ("host", config.host), ("address", address.description), ("family", address.family.rawValue)]
  }
}
