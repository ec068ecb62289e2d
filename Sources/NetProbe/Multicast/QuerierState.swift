/// What the watch knows about the querier of one interface and protocol: the queries seen,
/// the last general query, the timers queries announced, and from them whether a querier
/// is present. Pure: times are passed in (monotonic nanoseconds for the deadline, Unix
/// nanoseconds for the timestamp metric).
///
/// A querier is present while the last general query is younger than the Other Querier
/// Present Interval of RFC 3376 8.5 / RFC 3810 9.5, robustness × query interval + max
/// response / 2: 2 × 125 s + 10 s / 2 = 255 s with the standard values, 5 s before the
/// memberships it keeps alive would expire (robustness × interval + max response).
///
/// For that long after the watch starts listening on an interface it is counted present
/// too: a working querier may not have sent its next general query yet (with 125 s
/// between them, most starts hear none in the first minutes), so silence proves nothing
/// until it lasted the full timeout. An agent's start, or an interface that came back,
/// then raises no alarm; a link without a querier is reported one timeout after the
/// start, as one whose querier stopped is one timeout after its last query.
struct QuerierState: Sendable, Equatable {
  /// The RFC default query interval (RFC 3376 8.2, RFC 3810 9.2).
  static let defaultQueryIntervalSeconds = 125

  /// The network's timers as configured, for what the queries do not announce.
  struct Settings: Sendable, Equatable {
    /// Until a query announces one (IGMPv1/v2 and MLDv1 queries carry none); nil means 125 s.
    var queryInterval: Duration?
    /// Until a query announces one (IGMPv1 queries carry none).
    var queryResponseInterval: Duration
    /// Until a query announces one (older versions carry none; QRV 0 means above 7).
    var robustness: Int

    init(queryInterval: Duration? = nil, queryResponseInterval: Duration = .seconds(10), robustness: Int = 2) {
      self.queryInterval = queryInterval
      self.queryResponseInterval = queryResponseInterval
      self.robustness = robustness
    }

    init(_ config: QuerierWatchConfig) {
      self.init(
        queryInterval: config.queryInterval, queryResponseInterval: config.queryResponseInterval,
        robustness: config.robustness)
    }
  }

  /// The last general query, as received.
  struct GeneralQuery: Sendable, Equatable {
    var querier: IPAddress
    var version: Int
    var monotonicNanoseconds: Int64
    var unixNanoseconds: Int64
  }

  /// The timers general queries announced, each the last one announced. A query that
  /// announces none (IGMPv2 has no QQIC or QRV, IGMPv1 no max response either) leaves the
  /// others' values in place: with an IGMPv2 and an IGMPv3 querier on one link, or a v2
  /// proxy query between v3 ones, the timeout stays that of the querier that said it.
  /// Only while that querier is heard, though: once it has been silent for the timeout the
  /// configured timers give, another querier's query drops its QQIC and QRV, so that one
  /// stray IGMPv3 query (QQIC up to 31,744 s) cannot hold the timeout for days.
  struct Announced: Sendable, Equatable {
    /// QQIC, in seconds.
    var queryIntervalSeconds: Int?
    /// QRV.
    var robustness: Int?
    var maxResponseMilliseconds: Int?
  }

  struct CountKey: Sendable, Hashable, Comparable {
    var version: Int
    var kind: QueryKind

    static func < (a: CountKey, b: CountKey) -> Bool { (a.version, a.kind) < (b.version, b.kind) }
  }

  var settings: Settings
  private(set) var queries: [CountKey: UInt64] = [:]
  private(set) var malformed: UInt64 = 0
  private(set) var lastGeneral: GeneralQuery?
  private(set) var announced = Announced()
  /// The querier whose QQIC and QRV are in `announced`, and when it was last heard.
  struct Announcer: Sendable, Equatable {
    var querier: IPAddress
    var monotonicNanoseconds: Int64
  }
  private(set) var announcer: Announcer?
  /// When the watch's socket for this interface opened (monotonic ns); nil while it is closed.
  private(set) var listeningSince: Int64?

  init(settings: Settings) { self.settings = settings }

  /// Counts `query`; a general one becomes the last general query, and the timers it
  /// announces replace those announced before.
  mutating func record(_ query: MembershipQuery, monotonicNanoseconds: Int64, unixNanoseconds: Int64) {
    queries[CountKey(version: query.version, kind: query.kind), default: 0] += 1
    guard query.kind == .general else { return }
    lastGeneral = GeneralQuery(
      querier: query.querier, version: query.version, monotonicNanoseconds: monotonicNanoseconds,
      unixNanoseconds: unixNanoseconds)
    if query.queryIntervalSeconds != nil || query.robustness != nil {
      if announcer?.querier != query.querier {
        announced.queryIntervalSeconds = nil
        announced.robustness = nil
      }
      announcer = Announcer(querier: query.querier, monotonicNanoseconds: monotonicNanoseconds)
      if let interval = query.queryIntervalSeconds { announced.queryIntervalSeconds = interval }
      if let robustness = query.robustness { announced.robustness = robustness }
    } else if let current = announcer {
      if current.querier == query.querier {
        announcer = Announcer(querier: query.querier, monotonicNanoseconds: monotonicNanoseconds)
      } else if monotonicNanoseconds - current.monotonicNanoseconds > configuredTimeoutNanoseconds {
        announcer = nil
        announced.queryIntervalSeconds = nil
        announced.robustness = nil
      }
    }
    if let maxResponse = query.maxResponseMilliseconds { announced.maxResponseMilliseconds = maxResponse }
  }

  /// robustness × query interval + max response / 2 from the configured timers alone.
  var configuredTimeoutNanoseconds: Int64 {
    let interval = settings.queryInterval?.seconds ?? Double(Self.defaultQueryIntervalSeconds)
    return Int64((Double(settings.robustness) * interval + settings.queryResponseInterval.seconds / 2) * 1e9)
  }

  mutating func recordMalformed() { malformed += 1 }

  /// The watch's socket opened at `monotonicNanoseconds`: a querier is given one timeout to
  /// be heard before it is called absent.
  mutating func startedListening(atMonotonicNanoseconds now: Int64) { listeningSince = now }

  /// The watch's socket closed (the interface went away): no more benefit of the doubt.
  mutating func stoppedListening() { listeningSince = nil }

  /// The query interval in force: announced (QQIC of IGMPv3 / MLDv2), else configured, else
  /// the RFC default.
  var queryIntervalSeconds: Double {
    if let announced = announced.queryIntervalSeconds { return Double(announced) }
    if let configured = settings.queryInterval { return configured.seconds }
    return Double(Self.defaultQueryIntervalSeconds)
  }

  /// The robustness variable in force: announced (QRV), else configured.
  var robustness: Int { announced.robustness ?? settings.robustness }

  /// The max response time in force: announced, else configured.
  var maxResponseSeconds: Double {
    if let announced = announced.maxResponseMilliseconds { return Double(announced) / 1000 }
    return settings.queryResponseInterval.seconds
  }

  /// robustness × query interval + max response / 2, in nanoseconds.
  var timeoutNanoseconds: Int64 {
    Int64((Double(robustness) * queryIntervalSeconds + maxResponseSeconds / 2) * 1e9)
  }

  /// True while the last general query, or the start of listening, is no more than
  /// `timeoutNanoseconds` old; false once both are older, and while not listening before
  /// any general query.
  func isPresent(atMonotonicNanoseconds now: Int64) -> Bool {
    let timeout = timeoutNanoseconds
    if let last = lastGeneral, now - last.monotonicNanoseconds <= timeout { return true }
    if let since = listeningSince, now - since <= timeout { return true }
    return false
  }

  /// When `isPresent` turns false if nothing is heard meanwhile; nil when it is false already.
  func presentUntil(atMonotonicNanoseconds now: Int64) -> Int64? {
    guard isPresent(atMonotonicNanoseconds: now) else { return nil }
    let latest = max(lastGeneral?.monotonicNanoseconds ?? .min, listeningSince ?? .min)
    return latest + timeoutNanoseconds + 1
  }
}
