public import Logging
import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// The ping engine: runs every configured target on the event loop of its address
/// family, resolves DNS names on a thread of its own, carries targets over reloads, and
/// renders their series at scrape time.
public final class PingEngine: ConfigSubscriber, MetricsCollector {
  private let context: PingContext
  private let loops: [IPAddress.Family: PingLoop]
  private let state = Mutex(EngineState())
  private let resolver: DNSRefresher
  private let stats: PingEngineStats
  private let tracer: PathTracer

  struct EngineState {
    var targets: [String: PingTarget] = [:]
    /// The traced ones, by name.
    var paths: [String: PathTarget] = [:]
    /// Target names in configuration order, for a stable exposition.
    var order: [String] = []
    var freeSlots: [UInt32] = []
    var nextSlot: UInt32 = 0
    /// The family loop each target was given to.
    var assigned: [UInt32: IPAddress.Family] = [:]
    var rttBuckets: [Double] = PingSettings().rttBuckets
    var rotation: Duration?
    var nextRotation: ContinuousClock.Instant?
  }

  public init(logger: Logger) throws(SystemError) {
    var logger = logger
    logger[metadataKey: "engine"] = "ping"
    stats = PingEngineStats()
    context = PingContext(logger: logger, stats: stats)
    loops = [.ip4: try PingLoop(family: .ip4, context: context), .ip6: try PingLoop(family: .ip6, context: context)]
    resolver = DNSRefresher(logger: logger)
    tracer = try PathTracer(context: context)
    resolver.setHandler { [weak self] target in self?.reassign(target) }
  }

  /// Carries each target that measures the same thing over (`TargetConfig.measuresSameAs`)
  /// with its counters, window and path, under its new settings; starts the others afresh
  /// and drops the targets the configuration no longer lists.
  public func apply(_ config: NetProbeConfig) {
    var removed: [PingTarget] = []
    var added: [PingTarget] = []
    var rescheduled: [(PingTarget, IPAddress.Family)] = []
    state.withLock { state in
      state.rttBuckets = config.ping.rttBuckets
      var next: [String: PingTarget] = [:]
      for target in config.targets {
        if let existing = state.targets[target.name], existing.canCarryOver(to: target) {
          if existing.update(to: target, rttBuckets: config.ping.rttBuckets), let family = state.assigned[existing.slot] {
            rescheduled.append((existing, family))
          }
          next[target.name] = existing
          continue
        }
        let slot: UInt32
        if let free = state.freeSlots.popLast() {
          slot = free
        } else {
          slot = state.nextSlot
          state.nextSlot += 1
        }
        let fresh = PingTarget(config: target, slot: slot, rttBuckets: config.ping.rttBuckets)
        next[target.name] = fresh
        added.append(fresh)
      }
      for (name, old) in state.targets where next[name] !== old {
        removed.append(old)
        if let family = state.assigned.removeValue(forKey: old.slot) { loops[family]?.post(.remove(old.slot)) }
        state.freeSlots.append(old.slot)
      }
      state.targets = next
      state.order = config.targets.map(\.name)
      // Path tracing follows the ping target: kept while the ping target is kept and the
      // path traced is the same (`TraceOptions.tracesSamePathAs`). Removals are posted
      // before additions: a new path target of a kept ping target reuses its slot.
      var paths: [String: PathTarget] = [:]
      var newPaths: [PathTarget] = []
      for (name, target) in next {
        let trace = target.config.options.trace
        guard trace.enabled else { continue }
        if let existing = state.paths[name], existing.ping === target, existing.trace.tracesSamePathAs(trace) {
          if existing.update(to: trace) { newPaths.append(existing) }
          paths[name] = existing
        } else {
          let path = PathTarget(ping: target, slot: target.slot)
          paths[name] = path
          newPaths.append(path)
        }
      }
      for (name, old) in state.paths where paths[name] !== old { tracer.post(.remove(old.slot)) }
      // Adding a kept path target again reschedules it at its new interval.
      for path in newPaths { tracer.post(.add(path)) }
      state.paths = paths
      state.rotation = config.ping.identifierRotation
      state.nextRotation = config.ping.identifierRotation.map { ContinuousClock.now + $0 }
    }
    // Adding a kept target again to its loop replaces its schedule with one at the new interval.
    for (target, family) in rescheduled { loops[family]?.post(.add(target)) }
    resolver.update(names: state.withLock { state in state.order.compactMap { state.targets[$0] }.filter { $0.config.address == nil } })
    for target in added where target.config.address != nil { reassign(target) }
    if !added.isEmpty || !removed.isEmpty {
      context.logger.debug("ping targets updated", metadata: ["added": "\(added.count)", "removed": "\(removed.count)"])
    }
  }

  /// Gives `target` to the loop of its current address's family (moving it when a DNS
  /// name changed family).
  private func reassign(_ target: PingTarget) {
    guard let family = target.state.withLock({ $0.address?.family }) else { return }
    let previous: IPAddress.Family?? = state.withLock { state in
      guard state.targets[target.config.name] === target else { return .none }
      let previous = state.assigned[target.slot]
      state.assigned[target.slot] = family
      return .some(previous)
    }
    guard case .some(let old) = previous, old != family else { return }
    if let old { loops[old]?.post(.remove(target.slot)) }
    loops[family]?.post(.add(target))
  }

  public func stop() {
    resolver.stop()
    tracer.stop()
    for loop in loops.values { loop.stop() }
  }

  /// Replaces the ICMP identifier when `identifier_rotation` says so. Checked whenever the
  /// metrics are collected (scrapes and pushes), so no thread exists for it alone.
  private func rotateIfDue() {
    let due = state.withLock { state -> Bool in
      guard let rotation = state.rotation, let next = state.nextRotation, ContinuousClock.now >= next else { return false }
      state.nextRotation = ContinuousClock.now + rotation
      return true
    }
    if due { context.rotateIdentifier() }
  }

  // MARK: Metrics

  public func collect(into exposition: inout Exposition) {
    rotateIfDue()
    let (targets, paths) = state.withLock { state in
      (state.order.compactMap { state.targets[$0] }, state.order.compactMap { state.paths[$0] })
    }
    for target in targets { PingSeries.collect(target, into: &exposition) }
    for path in paths { PathSeries.collect(path, into: &exposition) }
    stats.collect(into: &exposition)
  }
}

/// Engine-wide counters: packets that matched no probe, and sockets that would not open.
final class PingEngineStats: MetricsCollector {
  private struct Key: Hashable, Comparable {
    var family: String
    var reason: String
    static func < (a: Key, b: Key) -> Bool { (a.family, a.reason) < (b.family, b.reason) }
  }
  private let unexpectedCounts = Mutex<[Key: UInt64]>([:])
  private let socketErrors = Mutex<[[String]: UInt64]>([:])

  func unexpected(family: IPAddress.Family, reason: UnexpectedReason) {
    unexpectedCounts.withLock { $0[Key(family: family.rawValue, reason: reason.rawValue), default: 0] += 1 }
  }

  func socketError(family: IPAddress.Family, kind: ICMPSocketKind, errno: Int32) {
    socketErrors.withLock { $0[[family.rawValue, kind.rawValue, Errno.name(errno)], default: 0] += 1 }
  }

  func collect(into exposition: inout Exposition) {
    // Every reason of every family, zero included, so alerts can use rate() from the start.
    let counts = unexpectedCounts.withLock { $0 }
    for family in IPAddress.Family.allCases {
      for reason in UnexpectedReason.allCases {
        let value = counts[Key(family: family.rawValue, reason: reason.rawValue)] ?? 0
        exposition.add(Catalogue.pingUnexpected, LabelSet([("family", family.rawValue), ("reason", reason.rawValue)]), Double(value))
      }
    }
    for (labels, value) in socketErrors.withLock({ $0 }).sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
      exposition.add(Catalogue.pingSocketErrors, LabelSet([("family", labels[0]), ("socket", labels[1]), ("errno", labels[2])]), Double(value))
    }
  }
}

/// Renders one target's series from its state.
enum PingSeries {
  static func collect(_ target: PingTarget, into exposition: inout Exposition) {
    let snapshot = target.state.withLock { $0 }
    let config = target.config
    let custom = config.options.labels.map { ($0.name, $0.value) }
    let lookupLabels = LabelSet([("target", config.name), ("host", config.host)]).appending(custom)
    if config.address == nil {
      exposition.add(Catalogue.pingDNSFailures, lookupLabels, Double(snapshot.dnsFailures))
    }
    guard let address = snapshot.address else { return }
    let labels = LabelSet([("target", config.name), ("host", config.host), ("address", address.description),
                           ("family", address.family.rawValue)]).appending(custom)
    exposition.add(Catalogue.pingTargetInfo, LabelSet([("target", config.name), ("host", config.host), ("address", address.description),
                                                       ("family", address.family.rawValue), ("socket", snapshot.socketKind?.rawValue ?? "")]).appending(custom), 1)
    exposition.add(Catalogue.pingSent, labels, Double(snapshot.sent))
    exposition.add(Catalogue.pingReceived, labels, Double(snapshot.received))
    exposition.add(Catalogue.pingDuplicates, labels, Double(snapshot.duplicates))
    exposition.add(Catalogue.pingLate, labels, Double(snapshot.late))
    for (errno, count) in snapshot.sendErrors.sorted(by: { $0.key < $1.key }) {
      exposition.add(Catalogue.pingSendErrors, LabelSet([("target", config.name), ("host", config.host), ("address", address.description),
                                                         ("family", address.family.rawValue), ("errno", errno)]).appending(custom), Double(count))
    }
    exposition.addHistogram(Catalogue.pingRTT, labels, snapshot.histogram.snapshot)
    let summary = snapshot.window.summary
    exposition.add(Catalogue.pingWindowProbes, labels, Double(summary.probes))
    if let value = summary.lossRatio { exposition.add(Catalogue.pingLossRatio, labels, value) }
    if let value = summary.rttMin { exposition.add(Catalogue.pingRTTMin, labels, value) }
    if let value = summary.rttMean { exposition.add(Catalogue.pingRTTMean, labels, value) }
    if let value = summary.rttMax { exposition.add(Catalogue.pingRTTMax, labels, value) }
    if let value = summary.rttStandardDeviation { exposition.add(Catalogue.pingRTTStandardDeviation, labels, value) }
    if let value = summary.jitter { exposition.add(Catalogue.pingJitter, labels, value) }
    if snapshot.received > 1 { exposition.add(Catalogue.pingJitterRFC3550, labels, snapshot.jitter.value) }
    if let ttl = snapshot.lastReplyTTL { exposition.add(Catalogue.pingReplyTTL, labels, Double(ttl)) }
  }
}
