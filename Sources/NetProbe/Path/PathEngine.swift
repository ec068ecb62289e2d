public import Logging
import Synchronization

/// The path engine: traces the targets whose `trace` is enabled, beside the ping engine —
/// the same addresses (which the ping engine resolves, `TargetAddresses`), the same probe
/// identity, its own loop, slots and series. A traced target keeps its path and history
/// over a reload that leaves what it measures and the path it traces unchanged
/// (`PathTarget.canCarryOver`).
public final class PathEngine: ConfigSubscriber, MetricsCollector {
  private let tracer: PathTracer
  private let state = Mutex(EngineState())
  private let unexpected = TraceUnexpectedAnswers()

  private struct EngineState {
    var targets: [String: PathTarget] = [:]
    /// Traced target names in configuration order, for a stable exposition.
    var order: [String] = []
    /// Slots without `ProbePayload.traceSlotFlag`, which `PathTarget` sets.
    var slots = SlotAllocator()
    /// Whether a target traces with UDP: then the UDP answer counters are rendered (an
    /// ICMP-only configuration's output stays as it was).
    var tracesUDP = false
  }

  /// - Parameters:
  ///   - identity: the nonce and identifiers, shared with the ping engine.
  ///   - addresses: where each target's probes go now.
  ///   - socketErrors: sockets that would not open (rendered by the ping engine).
  public init(logger: Logger, identity: ProbeIdentity, addresses: any TargetAddresses, socketErrors: ProbeSocketErrors) throws(SystemError)
  {
    var logger = logger
    logger[metadataKey: "engine"] = "path"
    tracer = try PathTracer(
      identity: identity, addresses: addresses, socketErrors: socketErrors, unexpected: unexpected, logger: logger)
  }

  public func apply(_ config: NetProbeConfig) {
    var commands: [PathTracer.Command] = []
    state.withLock { state in
      var next: [String: PathTarget] = [:]
      for target in config.targets where target.options.trace.enabled {
        if let existing = state.targets[target.name], existing.canCarryOver(to: target) {
          // Adding a kept target again reschedules it at its new interval.
          if existing.update(to: target) { commands.append(.add(existing)) }
          next[target.name] = existing
          continue
        }
        let fresh = PathTarget(config: target, slot: state.slots.take())
        next[target.name] = fresh
        commands.append(.add(fresh))
      }
      for (name, old) in state.targets where next[name] !== old {
        commands.insert(.remove(old.slot), at: 0)
        state.slots.release(old.slot & ~ProbePayload.traceSlotFlag)
      }
      state.targets = next
      state.order = config.targets.map(\.name).filter { next[$0] != nil }
      if next.values.contains(where: { $0.trace.probeProtocol == .udp }) { state.tracesUDP = true }
    }
    for command in commands { tracer.post(command) }
  }

  public func stop() { tracer.stop() }

  public func collect(into exposition: inout Exposition) {
    let (targets, tracesUDP) = state.withLock { state in (state.order.compactMap { state.targets[$0] }, state.tracesUDP) }
    for target in targets { PathSeries.collect(target, into: &exposition) }
    if tracesUDP { PathSeries.collect(unexpected, into: &exposition) }
  }
}

// MARK: Status page

extension PathEngine: StatusProvider {
  /// Each traced target's path copied under its own lock, by target name; the snapshot
  /// gives each to its ping target's row.
  func contribute(to snapshot: inout StatusSnapshot) {
    let targets = state.withLock { state in state.order.compactMap { state.targets[$0] } }
    for target in targets { snapshot.paths[target.config.name] = PathStatus(target) }
  }
}
