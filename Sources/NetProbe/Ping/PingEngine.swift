public import Logging
import Dispatch
@preconcurrency import Glibc
import FoundationEssentials
import Synchronization

/// The ping engine: runs every configured target on the event loop of its address
/// family, resolves DNS names on a loop of its own, carries targets over reloads, and
/// renders their series at scrape time. The path tracer runs beside it (`PathEngine`),
/// following the addresses it resolves (`TargetAddresses`).
public final class PingEngine: ConfigSubscriber, MetricsCollector, TargetAddresses {
  private let shared: PingShared
  private let loops: [IPAddress.Family: PingLoop]
  private let state = Mutex(EngineState())
  private let resolver: DNSRefresher
  private let stats: PingEngineStats

  struct EngineState {
    var targets: [String: PingTarget] = [:]
    /// Target names in configuration order, for a stable exposition.
    var order: [String] = []
    var slots = SlotAllocator()
    /// The family loop each target was given to.
    var assigned: [UInt32: IPAddress.Family] = [:]
  }

  /// - Parameters:
  ///   - identity: the nonce and ICMP identifiers, shared with the path tracer.
  ///   - socketErrors: sockets that would not open, shared with the path tracer; rendered here.
  public init(logger: Logger, identity: ProbeIdentity, socketErrors: ProbeSocketErrors) throws(SystemError) {
    var logger = logger
    logger[metadataKey: "engine"] = "ping"
    stats = PingEngineStats(socketErrors: socketErrors)
    let shared = PingShared(identity: identity, logger: logger, stats: stats)
    self.shared = shared
    loops = [.ip4: try PingLoop(family: .ip4, shared: shared), .ip6: try PingLoop(family: .ip6, shared: shared)]
    resolver = try DNSRefresher(logger: logger)
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
      var next: [String: PingTarget] = [:]
      for target in config.targets {
        if let existing = state.targets[target.name], existing.canCarryOver(to: target) {
          if existing.update(to: target, rttBuckets: config.ping.rttBuckets, native: config.ping.nativeHistograms),
            let family = state.assigned[existing.slot]
          {
            rescheduled.append((existing, family))
          }
          next[target.name] = existing
          continue
        }
        let fresh = PingTarget(
          config: target, slot: state.slots.take(), rttBuckets: config.ping.rttBuckets, native: config.ping.nativeHistograms)
        next[target.name] = fresh
        added.append(fresh)
      }
      for (name, old) in state.targets where next[name] !== old {
        removed.append(old)
        if let family = state.assigned.removeValue(forKey: old.slot) { loops[family]?.post(.remove(old.slot)) }
        state.slots.release(old.slot)
      }
      state.targets = next
      state.order = config.targets.map(\.name)
    }
    // Adding a kept target again to its loop replaces its schedule with one at the new interval.
    for (target, family) in rescheduled { loops[family]?.post(.add(target)) }
    // Every configuration starts the rotation period afresh; the loops' timers follow.
    shared.identity.setRotation(every: config.ping.identifierRotation, now: Clocks.monotonicNanoseconds())
    for loop in loops.values { loop.notify(.rotationChanged) }
    resolver.update(names: state.withLock { state in state.order.compactMap { state.targets[$0] }.filter { $0.config.address == nil } })
    for target in added where target.config.address != nil { reassign(target) }
    if !added.isEmpty || !removed.isEmpty {
      shared.logger.debug("ping targets updated", metadata: ["added": "\(added.count)", "removed": "\(removed.count)"])
    }
  }

  /// Where a target's probes go now: its configured address, or what its name resolved to.
  public func address(ofTarget name: String) -> IPAddress? {
    state.withLock { $0.targets[name] }?.state.withLock { $0.address }
  }

  /// What `reassign` finds: whether the target is still configured, and which loop had it.
  private enum Assignment {
    case gone
    case moved(from: IPAddress.Family?)
  }

  /// Gives `target` to the loop of its current address's family (moving it when a DNS
  /// name changed family).
  private func reassign(_ target: PingTarget) {
    guard let family = target.state.withLock({ $0.address?.family }) else { return }
    let assignment: Assignment = state.withLock { state in
      guard state.targets[target.config.name] === target else { return .gone }
      let previous = state.assigned[target.slot]
      state.assigned[target.slot] = family
      return .moved(from: previous)
    }
    guard case .moved(let old) = assignment, old != family else { return }
    if let old { loops[old]?.post(.remove(target.slot)) }
    loops[family]?.post(.add(target))
  }

  public func stop() {
    resolver.stop()
    for loop in loops.values { loop.stop() }
  }

  // MARK: Metrics

  public func collect(into exposition: inout Exposition) {
    let targets = state.withLock { state in state.order.compactMap { state.targets[$0] } }
    let slots = PingSeries.Slots(in: &exposition, targets: targets.count)
    for target in targets { PingSeries.collect(target, into: &exposition, slots) }
    stats.collect(into: &exposition)
  }
}

/// Engine-wide counters: packets that matched no probe, and sockets that would not open
/// (the path tracer's too).
final class PingEngineStats: MetricsCollector {
  private struct Key: Hashable, Comparable {
    var family: String
    var reason: String
    static func < (a: Key, b: Key) -> Bool { (a.family, a.reason) < (b.family, b.reason) }
  }
  private let unexpectedCounts = Mutex<[Key: UInt64]>([:])
  let socketErrors: ProbeSocketErrors

  init(socketErrors: ProbeSocketErrors = ProbeSocketErrors()) {
    self.socketErrors = socketErrors
  }

  func unexpected(family: IPAddress.Family, reason: UnexpectedReason) {
    unexpectedCounts.withLock { $0[Key(family: family.rawValue, reason: reason.rawValue), default: 0] += 1 }
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
    for (key, value) in socketErrors.snapshot() {
      exposition.add(
        Catalogue.pingSocketErrors,
        LabelSet([("family", key.family.rawValue), ("socket", key.kind.rawValue), ("errno", key.errno.name)]), Double(value))
    }
  }
}

/// Renders one target's series from its state.
enum PingSeries {
  /// What a scrape needs of a target's state, read under its lock: the counters, the
  /// window's figures and a copy of the bucket counts — not the state itself, whose
  /// arrays (ledger, window) the probe loop would then have to copy on its next write.
  struct Values {
    var address: IPAddress?
    var socketKind: ICMPSocketKind?
    var sent: UInt64
    var received: UInt64
    var duplicates: UInt64
    var late: UInt64
    var dnsFailures: UInt64
    var sendErrors: [String: UInt64]
    var histogram: HistogramSnapshot
    var summary: ProbeWindow.Summary?
    var jitter: Double
    var lastReplyTTL: Int?

    init(_ state: borrowing PingTargetState, series: SeriesChoice) {
      address = state.address
      socketKind = state.socketKind
      sent = state.sent
      received = state.received
      duplicates = state.duplicates
      late = state.late
      dnsFailures = state.dnsFailures
      sendErrors = state.sendErrors
      histogram = state.histogram.snapshot(withBuckets: series.classicBuckets)
      summary = series.windowGauges ? state.window.summary : nil
      jitter = state.jitter.value
      lastReplyTTL = state.lastReplyTTL
    }
  }

  /// The per-target families' places in the exposition, looked up once per scrape.
  struct Slots {
    let dnsFailures, targetInfo, sent, received, duplicates, late, sendErrors, rtt: Exposition.FamilySlot
    let windowProbes, lossRatio, rttMin, rttMean, rttMax, rttStandardDeviation, jitter: Exposition.FamilySlot
    let jitterRFC3550, replyTTL: Exposition.FamilySlot

    /// Room is made for a sample per target in the families every probed target has.
    init(in exposition: inout Exposition, targets: Int) {
      dnsFailures = exposition.slot(Catalogue.pingDNSFailures)
      targetInfo = exposition.slot(Catalogue.pingTargetInfo, reserving: targets)
      sent = exposition.slot(Catalogue.pingSent, reserving: targets)
      received = exposition.slot(Catalogue.pingReceived, reserving: targets)
      duplicates = exposition.slot(Catalogue.pingDuplicates, reserving: targets)
      late = exposition.slot(Catalogue.pingLate, reserving: targets)
      sendErrors = exposition.slot(Catalogue.pingSendErrors)
      rtt = exposition.slot(Catalogue.pingRTT, reserving: targets)
      windowProbes = exposition.slot(Catalogue.pingWindowProbes)
      lossRatio = exposition.slot(Catalogue.pingLossRatio)
      rttMin = exposition.slot(Catalogue.pingRTTMin)
      rttMean = exposition.slot(Catalogue.pingRTTMean)
      rttMax = exposition.slot(Catalogue.pingRTTMax)
      rttStandardDeviation = exposition.slot(Catalogue.pingRTTStandardDeviation)
      jitter = exposition.slot(Catalogue.pingJitter)
      jitterRFC3550 = exposition.slot(Catalogue.pingJitterRFC3550)
      replyTTL = exposition.slot(Catalogue.pingReplyTTL)
    }
  }

  static func collect(_ target: PingTarget, into exposition: inout Exposition, _ slots: Slots) {
    let values = target.state.withLock { Values($0, series: target.seriesChoice) }
    let labels = target.seriesLabels(address: values.address, socketKind: values.socketKind)
    if labels.named, let lookup = labels.lookup {
      exposition.add(slots.dnsFailures, lookup, Double(values.dnsFailures))
    }
    guard let series = labels.target, let info = labels.info else { return }
    exposition.add(slots.targetInfo, info, 1)
    exposition.add(slots.sent, series, Double(values.sent))
    exposition.add(slots.received, series, Double(values.received))
    exposition.add(slots.duplicates, series, Double(values.duplicates))
    exposition.add(slots.late, series, Double(values.late))
    for (errno, count) in values.sendErrors.sorted(by: { $0.key < $1.key }) {
      exposition.add(slots.sendErrors, labels.sendError(errno), Double(count))
    }
    exposition.addHistogram(slots.rtt, series, values.histogram)
    if let summary = values.summary {
      exposition.add(slots.windowProbes, series, Double(summary.probes))
      if let value = summary.lossRatio { exposition.add(slots.lossRatio, series, value) }
      if let value = summary.rttMin { exposition.add(slots.rttMin, series, value) }
      if let value = summary.rttMean { exposition.add(slots.rttMean, series, value) }
      if let value = summary.rttMax { exposition.add(slots.rttMax, series, value) }
      if let value = summary.rttStandardDeviation { exposition.add(slots.rttStandardDeviation, series, value) }
      if let value = summary.jitter { exposition.add(slots.jitter, series, value) }
    }
    if values.received > 1 { exposition.add(slots.jitterRFC3550, series, values.jitter) }
    if let ttl = values.lastReplyTTL { exposition.add(slots.replyTTL, series, Double(ttl)) }
  }
}

// MARK: Status page

extension PingEngine: StatusProvider {
  /// The engine's lock only long enough to list the targets; then each target's state is
  /// copied under its own lock, one target at a time, so a probe loop waits for at most
  /// one copy. Paths come from the path engine (`StatusSnapshot.paths`).
  func contribute(to snapshot: inout StatusSnapshot) {
    let targets = state.withLock { state in state.order.compactMap { state.targets[$0] } }
    snapshot.targets.reserveCapacity(snapshot.targets.count + targets.count)
    for target in targets {
      snapshot.targets.append(TargetStatus(target, now: snapshot.time))
    }
  }
}
