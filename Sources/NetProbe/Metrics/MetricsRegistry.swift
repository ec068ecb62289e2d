import Synchronization

/// The set of collectors that make up `/metrics`, and the one place that renders them.
///
/// Collectors are registered under a key so that a reload can swap an engine's collector
/// for a new one; a removed collector's series disappear from the next scrape.
public final class MetricsRegistry: Sendable {
  private let collectors = Mutex<[(key: String, collector: any MetricsCollector)]>([])

  public init() {}

  /// Adds `collector`, replacing any registered under the same key (keeping its position).
  public func register(_ key: String, _ collector: any MetricsCollector) {
    collectors.withLock { list in
      if let index = list.firstIndex(where: { $0.key == key }) {
        list[index].collector = collector
      } else {
        list.append((key, collector))
      }
    }
  }

  public func unregister(_ key: String) {
    collectors.withLock { list in list.removeAll { $0.key == key } }
  }

  /// The collectors in registration order: the status page asks those that can show
  /// their live state (`StatusProvider`) for it.
  func registeredCollectors() -> [any MetricsCollector] {
    collectors.withLock { $0.map(\.collector) }
  }

  /// Collects every registered collector into one exposition, in one buffer (tests, small
  /// outputs). Collectors run outside the registry's lock so that a slow one never blocks
  /// a reload.
  public func render(as encoder: any ExpositionEncoder = TextEncoder()) -> [UInt8] {
    collect().render(as: encoder)
  }

  /// The exposition as a stream of pieces in `encoder`'s format: the samples are collected
  /// now, the bytes made as the reader pulls them, or by `encoders` threads ahead of it
  /// (see `ExpositionStream`).
  public func stream(as encoder: any ExpositionEncoder = TextEncoder(), encoders: Int = 0) -> ExpositionStream {
    collect().stream(as: encoder, encoders: encoders)
  }

  /// Also times each collector, as node_exporter does, so that a slow engine shows itself
  /// in `netprobe_scrape_collector_duration_seconds`.
  private func collect() -> Exposition {
    let snapshot = collectors.withLock { $0 }
    var exposition = Exposition()
    var durations: [(key: String, seconds: Double)] = []
    durations.reserveCapacity(snapshot.count)
    for (key, collector) in snapshot {
      let start = Clocks.monotonicNanoseconds()
      collector.collect(into: &exposition)
      durations.append((key, Double(Clocks.monotonicNanoseconds() - start) / 1e9))
    }
    for (key, seconds) in durations {
      exposition.add(Catalogue.scrapeCollectorDuration, LabelSet([("collector", key)]), seconds)
    }
    return exposition
  }
}
