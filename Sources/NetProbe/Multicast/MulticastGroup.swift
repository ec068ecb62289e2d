import Synchronization

/// One configured group while it runs: its configuration, its streams (one per listed
/// source, or one any-source stream), and where its join stands.
///
/// The receiver thread writes; scrapes read under the same locks. A group survives a
/// reload that leaves its settings alone, so its counters never restart for nothing.
final class MulticastGroup: Sendable {
  /// The settings the group was started with. What it receives and measures never changes
  /// (a reload that changes it starts another group); the receive path reads this without
  /// a lock. Labels, `expected_rate` and `no_data_timeout` may change: see `current`.
  let config: MulticastGroupConfig
  /// The settings of the latest configuration, which `MulticastGroupConfig.measuresSameAs`
  /// the original.
  private let latest: Mutex<MulticastGroupConfig>
  /// The one-way delay histogram's buckets: the ping RTT buckets, and the native histogram
  /// beside them when `ping.native_histograms` is on.
  let delayLayout: HistogramLayout
  /// Keyed by source address text (the `source` label); `""` for the any-source stream.
  let streams: [String: MulticastStream]
  /// The same streams by source address, for the receive path: no text per datagram.
  private let bySource: [IPAddress: MulticastStream]
  /// The stream of an any-source group; nil for a source-specific one.
  private let anySource: MulticastStream?
  let join = Mutex(JoinState())
  private let labelCache = Mutex<MulticastSeriesLabels?>(nil)
  /// What belongs to the group rather than to one source: drops in the host, packets that
  /// fit no stream or no format.
  let counters = Mutex(GroupCounters())

  init(config: MulticastGroupConfig, delayBuckets: [Double], nativeDelay: NativeHistogramSettings? = nil) {
    self.config = config
    latest = Mutex(config)
    let delayLayout = HistogramLayout(upperBounds: delayBuckets, native: nativeDelay)
    self.delayLayout = delayLayout
    var streams: [String: MulticastStream] = [:]
    var bySource: [IPAddress: MulticastStream] = [:]
    if config.sources.isEmpty {
      anySource = MulticastStream(group: config, source: nil, delayLayout: delayLayout)
      streams[""] = anySource
    } else {
      anySource = nil
      for source in config.sources {
        let stream = MulticastStream(group: config, source: source, delayLayout: delayLayout)
        streams[source.description] = stream
        bySource[source] = stream
      }
    }
    self.streams = streams
    self.bySource = bySource
  }

  /// The settings in force, for the scrape: labels, expected rate and no-data timeout as
  /// the latest reload set them.
  var current: MulticastGroupConfig { latest.withLock { $0 } }

  /// Takes a reloaded group's settings that only change how its traffic is judged and
  /// labelled; its join and counters stay.
  func update(to config: MulticastGroupConfig) {
    precondition(self.config.measuresSameAs(config), "another group needs a new MulticastGroup")
    latest.withLock { $0 = config }
    labelCache.withLock { $0 = nil }
  }

  /// The group's label sets, rendered when first scraped and again only after a reload
  /// changed its settings (its labels): the streams are fixed for the group's life.
  func seriesLabels() -> MulticastSeriesLabels {
    labelCache.withLock { cache in
      if let cache { return cache }
      let made = MulticastSeriesLabels(current, sources: Array(streams.keys))
      cache = made
      return made
    }
  }

  /// The stream a datagram from `source` belongs to; nil for a source-specific group when
  /// the sender is not one of its sources.
  func stream(for source: IPAddress) -> MulticastStream? {
    anySource ?? bySource[source]
  }
}

/// Where a group's join stands.
struct JoinState: Sendable {
  /// The interface index of the last join attempt; nil while the interface is missing.
  var interfaceIndex: UInt32?
  /// True once every join call of the group succeeded, until its sockets close.
  var joined = false
  /// Failed joins by errno name, one per episode: a run of failed attempts (retried every
  /// second) with the same errno, ended by a successful join or another errno.
  var errors: [String: UInt64] = [:]
  /// The error of the episode under way, so it is counted and logged once, not at every retry.
  var lastError: String?
  /// Checks in a row (one a second) in which the kernel did not list the joined group.
  var unlistedChecks = 0
  /// Unlisted checks before the group is joined again: doubles each time a rejoin does not
  /// bring the listing back, so a table the kernel never fills costs a rejoin every five
  /// minutes, not every three seconds.
  var repairAfter = JoinState.firstRepair

  /// A join failed with `errno`: counted when it starts an episode (true: log it too).
  mutating func recordFailure(_ errno: String) -> Bool {
    joined = false
    guard lastError != errno else { return false }
    lastError = errno
    errors[errno, default: 0] += 1
    return true
  }

  static let firstRepair = 3
  static let latestRepair = 300

  /// One check of the kernel's table for a joined group; true when the membership has
  /// been missing long enough to join again.
  mutating func kernelCheck(listed: Bool) -> Bool {
    guard !listed else {
      unlistedChecks = 0
      repairAfter = Self.firstRepair
      return false
    }
    unlistedChecks += 1
    guard unlistedChecks >= repairAfter else { return false }
    unlistedChecks = 0
    repairAfter = min(repairAfter * 2, Self.latestRepair)
    return true
  }
}

/// Group-wide counters.
struct GroupCounters: Sendable {
  /// Datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL).
  var socketDrops: UInt64 = 0
  /// Datagrams ignored, by reason.
  var wrongSource: UInt64 = 0
  /// Sent to another group: the kernel should never deliver one (IP_MULTICAST_ALL=0).
  var wrongGroup: UInt64 = 0
  var malformed: UInt64 = 0
}

/// The traffic of one (group, source) pair: what arrived, and what its payload format says
/// about it.
final class MulticastStream: Sendable {
  let source: IPAddress?
  let stats: Mutex<StreamStats>

  init(group: MulticastGroupConfig, source: IPAddress?, delayLayout: HistogramLayout) {
    self.source = source
    stats = Mutex(StreamStats(analyzer: PayloadAnalyzer(config: group), delayLayout: delayLayout))
  }
}

/// Counters and gauges of one stream. Counters only go up.
struct StreamStats: Sendable {
  var packets: UInt64 = 0
  var bytes: UInt64 = 0
  /// Unix time of the last packet (kernel timestamp).
  var lastPacketTime: Double?
  /// Monotonic ns of the last packet, for the no-data timeout.
  var lastPacketMonotonic: Int64?
  /// Seconds from the last join to its first packet.
  var joinLatency: Double?
  /// The monotonic time of the join whose first packet has not come yet; nil once it came.
  var awaitingSince: Int64?
  /// A join latency test waits for this stream's first packet.
  var joinTestPending = false
  var joinTestLatency: Histogram
  var joinTestFailures: UInt64 = 0
  var analyzer: PayloadAnalyzer
  /// Beacon send → receive time, recorded only when the group's clocks are synchronised.
  var oneWayDelay: Histogram
  /// Packets received in each of the last seconds, for the measured rate.
  var rate = RateMeter()
  /// The last 100 seconds second by second, for the status page's graph.
  var history = ReceptionHistory()

  init(analyzer: PayloadAnalyzer, delayBuckets: [Double]) {
    self.init(analyzer: analyzer, delayLayout: HistogramLayout(upperBounds: delayBuckets))
  }

  init(analyzer: PayloadAnalyzer, delayLayout: HistogramLayout) {
    self.analyzer = analyzer
    oneWayDelay = Histogram(delayLayout)
    joinTestLatency = Histogram(upperBounds: StreamStats.joinLatencyBuckets)
  }

  /// Join latencies range from a few milliseconds (a router with the group already
  /// flowing) to seconds (a PIM join up a tree, or a querier-less snooping switch).
  static let joinLatencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
}

/// A group's rendered label sets: per stream (by source, "" for an any-source group), per
/// group (`source=""`), and those with one more label whose values are known in advance.
final class MulticastSeriesLabels: Sendable {
  let streams: [String: LabelSet]
  let group: LabelSet
  /// By `reason` of `netprobe_multicast_packets_unexpected_total`.
  let unexpected: [String: LabelSet]
  /// By source, in `MPEGTSErrorType.allCases` / `MPEGTSDiscontinuityReason.allCases` order.
  let mpegtsErrors: [String: [LabelSet]]
  let mpegtsDiscontinuities: [String: [LabelSet]]
  private let config: MulticastGroupConfig

  init(_ config: MulticastGroupConfig, sources: [String]) {
    self.config = config
    func labels(_ source: String, _ extra: [(String, String)] = []) -> LabelSet {
      Self.labels(config, source, extra)
    }
    var streams: [String: LabelSet] = [:]
    var errors: [String: [LabelSet]] = [:]
    var discontinuities: [String: [LabelSet]] = [:]
    for source in sources {
      streams[source] = labels(source)
      errors[source] = MPEGTSErrorType.allCases.map { labels(source, [("type", $0.rawValue)]) }
      discontinuities[source] = MPEGTSDiscontinuityReason.allCases.map { labels(source, [("reason", $0.rawValue)]) }
    }
    self.streams = streams
    mpegtsErrors = errors
    mpegtsDiscontinuities = discontinuities
    group = labels("")
    var unexpected: [String: LabelSet] = [:]
    for reason in ["malformed", "wrong_group", "wrong_source"] { unexpected[reason] = labels("", [("reason", reason)]) }
    self.unexpected = unexpected
  }

  /// The labels of a join error's series (rare: made when scraped).
  func joinError(_ errno: String) -> LabelSet { Self.labels(config, "", [("errno", errno)]) }

  private static func labels(_ config: MulticastGroupConfig, _ source: String, _ extra: [(String, String)]) -> LabelSet {
    LabelSet(
      [
        ("name", config.name), ("group", config.group.description), ("source", source),
        ("port", String(config.port)), ("interface", config.interface),
      ] + extra
    ).appending(config.labels.map { ($0.name, $0.value) })
  }
}
