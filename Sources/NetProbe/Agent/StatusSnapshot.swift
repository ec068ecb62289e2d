import Synchronization

/// What the status page, the per-target pages and `/api/v1/status` show: every engine's
/// live state copied into plain values at one moment, then sorted worst first.
///
/// Copies, not views: each engine's state is read under the lock it already has (one
/// target at a time), and everything after — medians, sorting, HTML, SVG, JSON — runs on
/// the copies with no lock held, so a page never holds a probe loop up for longer than one
/// target's copy.
struct StatusSnapshot: Sendable {
  /// Unix seconds when the snapshot was taken.
  var time: Double
  var configSource: String
  /// The errors of the last reload, while it failed (the previous configuration runs).
  var reloadError: String?
  var targets: [TargetStatus] = []
  /// Traced targets' paths by target name, from the path engine, until `collect` gives
  /// each to its target's row.
  var paths: [String: PathStatus] = [:]
  var groups: [GroupStatus] = []
  var queriers: [QuerierStatus] = []
  var push: PushStatus?

  /// Asks every registered collector that can (`StatusProvider`) for its state, adds the
  /// configured targets and groups no engine reported (shown as having no data: an engine
  /// that failed to start must not make its targets vanish from the page), ties each group
  /// to the querier watched on its interface, and sorts worst first.
  static func collect(registry: MetricsRegistry, agent: Agent, now: Double) -> StatusSnapshot {
    let config = agent.config
    var snapshot = StatusSnapshot(
      time: now, configSource: agent.source.description,
      reloadError: agent.lastReloadErrors?.description)
    for collector in registry.registeredCollectors() {
      (collector as? any StatusProvider)?.contribute(to: &snapshot)
    }
    // The engine reports exactly the configured targets but for a moment during a reload:
    // only then is the name-by-name check (10,000 hashes) worth its cost.
    let reportedNames = snapshot.targets.map(\.name)
    if reportedNames != config.targets.map(\.name) {
      let reported = Set(reportedNames)
      for target in config.targets where !reported.contains(target.name) {
        snapshot.targets.append(TargetStatus(unprobed: target))
      }
    }
    let reportedGroups = Set(snapshot.groups.map(\.name))
    for group in config.multicast where !reportedGroups.contains(group.name) {
      snapshot.groups.append(GroupStatus(unreceived: group))
    }
    snapshot.linkPaths()
    snapshot.linkQueriers()
    snapshot.sortWorstFirst()
    return snapshot
  }

  /// Gives each traced target its path, and judges its row again (a recent path change
  /// is a warning).
  mutating func linkPaths() {
    guard !paths.isEmpty else { return }
    for index in targets.indices {
      guard let path = paths[targets[index].name] else { continue }
      targets[index].path = path
      targets[index].assess(now: time)
    }
    paths = [:]
  }

  /// A group's querier is the one watched on its interface for its family's protocol; a
  /// group on an interface nobody watches has none to report (nil, not "absent").
  mutating func linkQueriers() {
    for index in groups.indices {
      let wanted: QuerierProtocol = groups[index].isIPv6 ? .mld : .igmp
      if let watch = queriers.first(where: { $0.interface == groups[index].interface && $0.querierProtocol == wanted }) {
        groups[index].querierPresent = watch.present
        if !watch.present { groups[index].addProblem(.warning, "no querier on \(watch.interface)") }
      }
    }
  }

  /// Worst first: by health, then loss, then mean RTT, then name, so the rows that need
  /// a look are on the first page however many targets there are.
  ///
  /// Sorted through a permutation of small keys: moving the rows themselves (a dozen
  /// fields and arrays each) about 130,000 times for 10,000 targets cost more than all the
  /// rest of a page.
  mutating func sortWorstFirst() {
    let rows = targets
    let keys = rows.indices.map { index in
      (health: rows[index].health.rawValue, loss: rows[index].lossRatio ?? -1, rtt: rows[index].rttMean ?? -1, index: index)
    }
    let order = keys.sorted { a, b in
      if a.health != b.health { return a.health > b.health }
      if a.loss != b.loss { return a.loss > b.loss }
      if a.rtt != b.rtt { return a.rtt > b.rtt }
      return rows[a.index].name < rows[b.index].name
    }
    targets = order.map { rows[$0.index] }
    groups.sort(by: GroupStatus.worseThan)
  }
}

/// An engine that shows its live state on the status page.
protocol StatusProvider: Sendable {
  /// Appends its part; called on an HTTP worker, so it copies under its locks and returns.
  func contribute(to snapshot: inout StatusSnapshot)
}

/// How a row looks: the class that colours it and the word that says the same in text,
/// for colour-blind readers and for `curl`.
enum Health: Int, Sendable, Comparable {
  case ok = 0
  /// Not probed or nothing decided yet: nothing to alarm on, but nothing healthy either.
  case noData = 1
  case warning = 2
  case critical = 3

  static func < (a: Health, b: Health) -> Bool { a.rawValue < b.rawValue }

  /// The text marker and the JSON value.
  var word: String {
    switch self {
    case .ok: "OK"
    case .noData: "NODATA"
    case .warning: "WARN"
    case .critical: "CRIT"
    }
  }

  var jsonValue: String {
    switch self {
    case .ok: "ok"
    case .noData: "no_data"
    case .warning: "warning"
    case .critical: "critical"
    }
  }
}

/// The thresholds the page colours by. Fixed, not configurable: they only pick what sorts
/// first and what is coloured; alerting stays in Prometheus rules.
enum StatusThresholds {
  /// A window losing this share or more is critical; any loss at all is a warning.
  static let criticalLoss = 0.10
  /// A path change younger than this is a warning: the route is moving right now.
  static let recentPathChange = 300.0
  /// A multicast rate this far from the expected one (either way) is a warning.
  static let rateDeviation = 0.10
}

/// One ping target as the page shows it.
struct TargetStatus: Sendable {
  var name: String
  var host: String
  /// The address probed; kept as the value and described only for the rows shown.
  var resolved: IPAddress?
  var labels: [Label]
  /// The probe interval in seconds: the smoke graph's time axis (the window keeps the
  /// order of outcomes, not their times).
  var interval: Double
  var probes: Int
  var lossRatio: Double?
  var rttMin: Double?
  var rttMax: Double?
  /// The mean RTT: the sort's last key (the median is only worked out for rows shown).
  var rttMean: Double?
  /// Mean |RTTᵢ − RTTᵢ₋₁| over the window, the `netprobe_ping_jitter_seconds` gauge.
  var jitter: Double?
  var dnsError: String?
  /// A copy of the target's window (copy-on-write: no probe is copied unless it changes).
  var window: ProbeWindow
  var path: PathStatus?
  var health = Health.ok
  var problems: [String] = []

  var address: String? { resolved?.description }

  /// Decides the row's health from the figures; `now` dates the path's last change.
  mutating func assess(now: Double) {
    health = .ok
    problems = []
    if let dnsError, resolved == nil {
      raise(.critical, "DNS: \(dnsError)")
    }
    if let loss = lossRatio {
      if probes > 0 && loss >= 1 {
        raise(.critical, "all probes lost")
      } else if loss >= StatusThresholds.criticalLoss {
        raise(.critical, "loss \(StatusFormat.percent(loss))")
      } else if loss > 0 {
        raise(.warning, "loss \(StatusFormat.percent(loss))")
      }
    } else if health == .ok {
      raise(.noData, "no probe decided yet")
    }
    if let change = path?.lastChange, now - change < StatusThresholds.recentPathChange {
      raise(.warning, "path changed \(StatusFormat.age(now - change)) ago")
    }
  }

  private mutating func raise(_ level: Health, _ problem: String) {
    health = max(health, level)
    problems.append(problem)
  }

  /// The median of the answered probes (the mean of the middle two for an even count).
  static func median(of outcomes: [Float]) -> Double? {
    median(sorted: outcomes.filter { !$0.isNaN }.sorted())
  }

  /// The median of RTTs none of which is lost, by selection rather than a full sort (it
  /// runs for every target on every page view); reorders `values`.
  static func median(unsorted values: inout [Float]) -> Double? {
    values.withUnsafeMutableBufferPointer { median(unsorted: $0) }
  }

  static func median(unsorted values: UnsafeMutableBufferPointer<Float>) -> Double? {
    let count = values.count
    guard count > 0 else { return nil }
    let upper = select(values, count / 2)
    guard count % 2 == 0 else { return Double(upper) }
    // After selecting the upper middle, everything before it is no larger: the lower
    // middle is their maximum.
    var lower = -Float.infinity
    for index in 0..<(count / 2) { lower = max(lower, values[index]) }
    return (Double(lower) + Double(upper)) / 2
  }

  /// Hoare's quickselect: the value that would sit at `k` were `values` sorted, with every
  /// value before `k` no larger and every one after no smaller.
  static func select(_ values: UnsafeMutableBufferPointer<Float>, _ k: Int) -> Float {
    var low = 0
    var high = values.count - 1
    while low < high {
      let pivot = values[low + (high - low) / 2]
      var i = low
      var j = high
      while i <= j {
        while values[i] < pivot { i += 1 }
        while values[j] > pivot { j -= 1 }
        if i <= j {
          values.swapAt(i, j)
          i += 1
          j -= 1
        }
      }
      if k <= j { high = j } else if k >= i { low = i } else { break }
    }
    return values[k]
  }

  /// The median of RTTs already sorted, none lost.
  static func median(sorted answered: [Float]) -> Double? {
    guard !answered.isEmpty else { return nil }
    let middle = answered.count / 2
    if answered.count % 2 == 1 { return Double(answered[middle]) }
    return (Double(answered[middle - 1]) + Double(answered[middle])) / 2
  }

  /// From a window of outcomes (oldest first, NaN for a loss), for tests and the
  /// configured targets no engine reported.
  init(
    name: String, host: String, address: IPAddress?, labels: [Label] = [], interval: Double,
    outcomes: [Float], dnsError: String? = nil, path: PathStatus? = nil, now: Double
  ) {
    var window = ProbeWindow(capacity: max(outcomes.count, 1))
    for outcome in outcomes { window.record(outcome.isNaN ? nil : Double(outcome)) }
    self.init(
      name: name, host: host, address: address, labels: labels, interval: interval, window: window,
      dnsError: dnsError, path: path, now: now)
  }

  /// From a copy of a target's window: its summary is one pass with no allocation, so
  /// 10,000 targets cost little per page view; the median and the outcomes for the smoke
  /// graph are worked out only for the rows shown (`rttMedian`, `outcomes`).
  init(
    name: String, host: String, address: IPAddress?, labels: [Label], interval: Double, window: ProbeWindow,
    dnsError: String?, path: PathStatus? = nil, now: Double
  ) {
    self.name = name
    self.host = host
    resolved = address
    self.labels = labels
    self.interval = interval
    self.window = window
    self.dnsError = dnsError
    self.path = path
    let summary = window.summary
    probes = summary.probes
    lossRatio = summary.lossRatio
    rttMin = summary.rttMin
    rttMax = summary.rttMax
    rttMean = summary.rttMean
    jitter = summary.jitter
    assess(now: now)
  }

  /// The window's outcomes oldest first, RTT in seconds or NaN for a loss.
  var outcomes: [Float] { window.orderedOutcomes }

  /// The median of the answered probes in the window (a selection on the stack).
  var rttMedian: Double? {
    let outcomes = window.orderedOutcomes
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: max(outcomes.count, 1)) { answered in
      var count = 0
      for outcome in outcomes where !outcome.isNaN {
        answered[count] = outcome
        count += 1
      }
      return Self.median(unsorted: UnsafeMutableBufferPointer(rebasing: answered[0..<count]))
    }
  }

  /// A running target: its state copied under its lock.
  init(_ target: PingTarget, now: Double) {
    let config = target.config
    let (window, address, dnsError) = target.state.withLock { state in
      (state.window, state.address, state.dnsError)
    }
    self.init(
      name: config.name, host: config.host, address: address,
      labels: config.options.labels, interval: config.options.interval.seconds,
      window: window, dnsError: dnsError, now: now)
  }

  /// A configured target no engine reported.
  init(unprobed config: TargetConfig) {
    self.init(
      name: config.name, host: config.host, address: config.address,
      labels: config.options.labels, interval: config.options.interval.seconds,
      outcomes: [], now: 0)
  }
}

/// A traced target's path: its hop count, changes and the confirmed hops with their loss.
struct PathStatus: Sendable {
  struct Hop: Sendable {
    /// The addresses that answered at this TTL (several with ECMP); empty for `*`.
    var responders: [String]
    var lossRatio: Double?
    var rttMean: Double?
  }

  var hops: [Hop]
  var changes: Int
  /// Unix seconds of the last confirmed change; nil while none happened.
  var lastChange: Double?
  /// Whether the last round reached the target.
  var reached: Bool
  var rounds: UInt64

  init(hops: [Hop], changes: Int, lastChange: Double?, reached: Bool, rounds: UInt64) {
    self.hops = hops
    self.changes = changes
    self.lastChange = lastChange
    self.reached = reached
    self.rounds = rounds
  }

  init(_ target: PathTarget) {
    let state = target.state.withLock { $0 }
    let confirmed = state.detector.confirmed?.hops ?? []
    hops = confirmed.enumerated().map { index, responders in
      let history = index < state.hops.count ? state.hops[index] : HopHistory()
      return Hop(responders: responders.map(\.description).sorted(), lossRatio: history.lossRatio, rttMean: history.meanRTT)
    }
    changes = state.detector.changes
    lastChange = state.lastChangeTime
    reached = state.lastRound?.destinationTTL != nil
    rounds = state.rounds
  }
}

/// One multicast group, its streams summed: the page asks "does this group arrive, at the
/// rate it should, without loss?".
struct GroupStatus: Sendable {
  var name: String
  var group: String
  var sources: [String]
  var port: Int
  var interface: String
  var labels: [Label]
  var isIPv6: Bool
  var joined: Bool
  var joinError: String?
  var receiving: Bool
  /// Packets per second over the last complete seconds, all sources.
  var rate: Double?
  var expectedRate: Double?
  var packets: UInt64
  /// Sequence gaps counted since the join (formats that number their packets).
  var lost: UInt64
  var sequenced: Bool
  /// Seconds since the newest packet of any source.
  var lastPacketAge: Double?
  /// nil when no querier watch covers the group's interface.
  var querierPresent: Bool?
  /// The last `ReceptionHistory.capacity` complete seconds, oldest first, all sources
  /// summed (nil: before the join); empty for a group no engine reported.
  var history: [ReceptionHistory.Second?] = []
  /// The Unix second of the newest entry of `history`.
  var historyEnd: Int64 = 0
  var health = Health.ok
  var problems: [String] = []

  /// lost / (received + lost) since the join, for sequenced formats.
  var lossRatio: Double? {
    guard sequenced, packets + lost > 0 else { return nil }
    return Double(lost) / Double(packets + lost)
  }

  mutating func assess() {
    health = .ok
    problems = []
    if !joined { addProblem(.critical, joinError.map { "not joined: \($0)" } ?? "not joined") }
    if !receiving { addProblem(.critical, packets == 0 ? "nothing received" : "not receiving") }
    if receiving, let rate, let expectedRate, expectedRate > 0, abs(rate / expectedRate - 1) > StatusThresholds.rateDeviation {
      addProblem(.warning, "rate \(StatusFormat.number(rate))/s, expected \(StatusFormat.number(expectedRate))/s")
    }
    // Loss since the join only sorts; loss in the graph's span is happening now.
    let recentLoss = history.reduce(UInt64(0)) { $0 + UInt64($1?.lost ?? 0) }
    if recentLoss > 0 { addProblem(.warning, "\(recentLoss) lost in the last \(history.count) s") }
  }

  mutating func addProblem(_ level: Health, _ problem: String) {
    health = max(health, level)
    problems.append(problem)
  }

  static func worseThan(_ a: GroupStatus, _ b: GroupStatus) -> Bool {
    if a.health != b.health { return a.health > b.health }
    let lossA = a.lossRatio ?? -1
    let lossB = b.lossRatio ?? -1
    if lossA != lossB { return lossA > lossB }
    return a.name < b.name
  }

  init(_ group: MulticastGroup, membership: KernelMembership, now: Int64, second: Int64) {
    let config = group.current
    let join = group.join.withLock { $0 }
    self.init(unreceived: config)
    joined = join.joined && membership.isMember(config.group, interface: config.interface)
    joinError = join.lastError
    var total: Double?
    var newest: Int64?
    // The second under way is still filling: the graph ends with the one before.
    historyEnd = second - 1
    var windows: [[ReceptionHistory.Second?]] = []
    for stream in group.streams.values {
      let stats = stream.stats.withLock { $0 }
      windows.append(stats.history.seconds(through: historyEnd))
      packets += stats.packets
      if let rate = stats.rate.rate(atSecond: second) ?? (stats.packets == 0 ? 0 : nil) { total = (total ?? 0) + rate }
      if let last = stats.lastPacketMonotonic { newest = max(newest ?? last, last) }
      let payload = stats.analyzer.snapshot
      if payload.sequenced {
        sequenced = true
        lost += payload.lost
      }
    }
    rate = total
    history = ReceptionHistory.merge(windows)
    if let newest {
      lastPacketAge = Double(now - newest) / 1e9
      receiving = now - newest <= config.noDataTimeout.nanoseconds
    }
    assess()
  }

  /// A configured group no engine reported, or the starting point of a reported one.
  init(unreceived config: MulticastGroupConfig) {
    name = config.name
    group = config.group.description
    sources = config.sources.map(\.description)
    port = config.port
    interface = config.interface
    labels = config.labels
    isIPv6 = config.group.family == .ip6
    joined = false
    receiving = false
    expectedRate = config.expectedRate
    packets = 0
    lost = 0
    sequenced = false
    assess()
  }
}

/// One interface and protocol the querier watch listens on.
struct QuerierStatus: Sendable {
  var interface: String
  var querierProtocol: QuerierProtocol
  var present: Bool
  var querier: String?
  var version: Int?
  /// Seconds since the last general query.
  var lastQueryAge: Double?
}

/// The Pushgateway client's state.
struct PushStatus: Sendable {
  var configured: Bool
  var interval: Double?
  var successes: UInt64
  var failures: UInt64
  /// Unix seconds.
  var lastSuccess: Double?
  /// nil before the first push ended.
  var lastSucceeded: Bool?
  var lastError: String?

  var health: Health {
    switch lastSucceeded {
    case false?: .critical
    case true?: .ok
    case nil: .noData
    }
  }
}
