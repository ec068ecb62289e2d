public import Logging
import Synchronization

/// The multicast engine: joins every configured group on its interface, receives on one
/// thread, attributes each datagram to its group and source, and keeps each stream's
/// statistics. Once a second the thread checks the interfaces (rejoining when one comes
/// back or changes index), retries failed joins and reads the kernel's membership tables.
public final class MulticastEngine: ConfigSubscriber, MetricsCollector {
  private let shared: MulticastShared
  /// The receiver loop; each command is the whole new list of groups.
  private let loop: EventLoop<MulticastReceiverEngine>

  public init(logger: Logger) throws(SystemError) {
    var logger = logger
    logger[metadataKey: "engine"] = "multicast"
    let shared = MulticastShared(logger: logger)
    self.shared = shared
    loop = try EventLoop(name: "multicast") { MulticastReceiverEngine(shared: shared) }
  }

  public func apply(_ config: NetProbeConfig) {
    let layout = config.ping.rttLayout
    let next: [MulticastGroup] = shared.groups.withLock { current in
      let kept = config.multicast.map { wanted in
        // The same traffic measured the same way (labels, expected rate and no-data timeout
        // aside): keep the group, its join and counters, under the new settings.
        guard let existing = current.first(where: { $0.config.measuresSameAs(wanted) && $0.delayLayout == layout }) else {
          return MulticastGroup(config: wanted, delayBuckets: layout.upperBounds, nativeDelay: layout.native)
        }
        existing.update(to: wanted)
        return existing
      }
      current = kept
      return kept
    }
    loop.post(next, isEmpty: next.isEmpty)
  }

  public func stop() { loop.stop() }

  public func collect(into exposition: inout Exposition) {
    let current = shared.groups.withLock { $0 }
    let kernel = shared.membership.withLock { $0 }
    let now = Clocks.monotonicNanoseconds()
    let second = Clocks.realtimeNanoseconds() / 1_000_000_000
    for group in current {
      MulticastSeries.collect(group, membership: kernel, now: now, second: second, into: &exposition)
    }
  }
}

/// What the engine and its receiver thread share.
final class MulticastShared: Sendable {
  let logger: Logger
  let groups = Mutex<[MulticastGroup]>([])
  /// The kernel's membership tables as last read.
  let membership = Mutex(KernelMembership())

  init(logger: Logger) { self.logger = logger }
}

// MARK: Status page

extension MulticastEngine: StatusProvider {
  /// Each group's join and streams copied under their own locks, as a scrape reads them.
  func contribute(to snapshot: inout StatusSnapshot) {
    let current = shared.groups.withLock { $0 }
    let kernel = shared.membership.withLock { $0 }
    let now = Clocks.monotonicNanoseconds()
    let second = Clocks.realtimeNanoseconds() / 1_000_000_000
    for group in current {
      snapshot.groups.append(GroupStatus(group, membership: kernel, now: now, second: second))
    }
  }
}
