/// How many HTTP connections fit in the open-file limit beside everything else the agent
/// holds open: a pure computation, so the start-up log and the tests agree on it.
///
/// With `--web.max-connections` above what the limit leaves, idle clients used to take the
/// last descriptors; accept then failed with EMFILE on every loop turn, a core spun and
/// health checks went unanswered. Sizing the limit below the descriptors left keeps the
/// HTTP server's own cap (and its eviction of idle connections) in charge instead.
public struct DescriptorBudget: Sendable, Equatable {
  /// Descriptors set aside beyond the counted ones: log and /proc reads, the resolver, a
  /// reload reading its files, libcurl's sockets while pushing.
  public static let spare = 32

  /// The HTTP connection limit to use.
  public var connections: Int
  /// Descriptors kept for everything else: open now, the engines' sockets, the spare.
  public var reserved: Int
  /// True when `connections` is below what was asked for.
  public var lowered: Bool

  /// - Parameters:
  ///   - requested: `--web.max-connections`.
  ///   - softLimit: RLIMIT_NOFILE in force (after raising it to the hard limit).
  ///   - openNow: descriptors open before the engines start.
  ///   - engineSockets: what the configuration will open (`engineSockets(for:)`).
  public init(requested: Int, softLimit: UInt64, openNow: Int, engineSockets: Int) {
    reserved = openNow + engineSockets + DescriptorBudget.spare
    let available = softLimit > UInt64(Int.max) ? Int.max : Int(softLimit) - reserved
    // At least one connection, so health checks can be answered at all.
    connections = max(1, min(requested, available))
    lowered = connections < requested
  }

  /// Sockets the engines open for a configuration: the ping and path sockets (one per
  /// family and kind, a handful), one per multicast group and per 10 sources of a
  /// source-specific group, one per beacon, two per querier interface (IGMP and MLD).
  /// A reload that adds more is covered by the server's EMFILE handling, not by this.
  public static func engineSockets(for config: NetProbeConfig) -> Int {
    let probes = config.targets.isEmpty ? 0 : 8
    let groups = config.multicast.reduce(0) { $0 + 1 + $1.sources.count / 10 }
    let querier = 2 * (config.querierWatch?.interfaces.count ?? 0)
    return probes + groups + config.beacons.count + querier
  }
}
