/// Which connection the HTTP server closes to make room for a newcomer: a pure choice,
/// unit-tested apart from sockets and clocks.
///
/// A full server used to refuse the newcomer, so one client holding every slot with idle
/// or dribbling sockets denied every scrape and health check. Instead the connection that
/// costs the most and has given the least goes: one waiting for nothing (idle before its
/// first request, or between keep-alive requests) before one still sending its request,
/// and a connection whose request is complete (rendering or being written) never.
enum Admission {
  /// What a connection is doing, as admission sees it; earlier cases are evicted first.
  enum State: Int, Comparable, Sendable {
    /// No request pending: a fresh socket that has sent nothing, or a keep-alive between
    /// requests. Closing it loses nothing the client had started.
    case idle
    /// Part of a request has arrived (slowloris dribbles here).
    case incompleteRequest
    /// A complete request is being answered: never evicted, it is what the server is for.
    case answering

    static func < (a: State, b: State) -> Bool { a.rawValue < b.rawValue }

    /// The `reason` label of `netprobe_http_evicted_connections_total` for this state.
    var evictionReason: String {
      switch self {
      case .idle: "idle"
      case .incompleteRequest: "incomplete_request"
      case .answering: "answering"
      }
    }
  }

  /// One open connection, reduced to what the choice needs.
  struct Candidate: Equatable, Sendable {
    var id: Int
    var client: IPAddress
    var state: State
    /// When the connection last made progress (accepted, received bytes, finished a
    /// response): the longest-silent goes first among equals.
    var lastProgress: ContinuousClock.Instant
  }

  /// The connection to close, or nil when every one is answering a complete request.
  ///
  /// Order: idle before incomplete; among those, the client holding the most connections
  /// first (an attacker with hundreds of sockets pays before a Prometheus with one
  /// keep-alive); then the one silent the longest. `onlyClient` restricts the choice to one
  /// address, for the per-client limit: a client at its limit can only displace itself.
  static func victim(
    among candidates: some Sequence<Candidate>, connectionsPerClient: [IPAddress: Int],
    onlyClient: IPAddress? = nil
  ) -> Candidate? {
    var best: Candidate?
    var bestCount = 0
    for candidate in candidates where candidate.state != .answering {
      if let onlyClient, candidate.client != onlyClient { continue }
      let count = connectionsPerClient[candidate.client] ?? 0
      if let current = best, !goesBefore(candidate, count, current, bestCount) { continue }
      best = candidate
      bestCount = count
    }
    return best
  }

  /// Every evictable connection in the order `victim` would pick them, for a burst of
  /// newcomers: ranking once per burst costs one sort instead of a scan per newcomer,
  /// which kept a health check queued behind a thousand attacker connections for seconds.
  /// The counts are those at the start of the burst.
  static func ranked(_ candidates: some Sequence<Candidate>, connectionsPerClient: [IPAddress: Int]) -> [Candidate] {
    let evictable = candidates.filter { $0.state != .answering }.map { ($0, connectionsPerClient[$0.client] ?? 0) }
    return evictable.sorted { goesBefore($0.0, $0.1, $1.0, $1.1) }.map(\.0)
  }

  /// Whether `a` (whose client holds `countA` connections) is evicted before `b`.
  static func goesBefore(_ a: Candidate, _ countA: Int, _ b: Candidate, _ countB: Int) -> Bool {
    if a.state != b.state { return a.state < b.state }
    if countA != countB { return countA > countB }
    return a.lastProgress < b.lastProgress
  }

  /// The key a client's connections are counted under: its address, with an IPv4-mapped
  /// IPv6 address (`::ffff:192.0.2.1`, what a dual-stack listener reports for IPv4
  /// clients) folded to the IPv4 address and the zone dropped, so one client has one count.
  static func clientKey(_ address: IPAddress) -> IPAddress {
    guard case .v6(let bytes, _) = address else { return address }
    if bytes.high == 0, bytes.low >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: bytes.low)) }
    return .v6(bytes, zone: nil)
  }

  /// Whether the server is under pressure, when the tighter request deadline applies:
  /// three quarters of its connections are taken, or descriptors have run out.
  static func underPressure(open: Int, limit: Int, descriptorsExhausted: Bool) -> Bool {
    descriptorsExhausted || open * 4 >= limit * 3
  }
}
