/// The whole configuration, typed and validated. Built only by `ConfigSchema`, so every
/// value here has passed its range and consistency checks.
public struct NetProbeConfig: Sendable, Equatable {
  public var defaults: ProbeOptions
  public var ping: PingSettings
  public var targets: [TargetConfig]
  public var multicast: [MulticastGroupConfig]
  public var beacons: [BeaconConfig]
  public var querierWatch: QuerierWatchConfig?
  public var push: PushConfig?
  /// Where more targets come from (`target_files`, read by `TargetFileSet`).
  public var targetFiles: [TargetFilesConfig] = []

  public init(
    defaults: ProbeOptions = ProbeOptions(), ping: PingSettings = PingSettings(),
    targets: [TargetConfig] = [], multicast: [MulticastGroupConfig] = [],
    beacons: [BeaconConfig] = [], querierWatch: QuerierWatchConfig? = nil, push: PushConfig? = nil
  ) {
    self.defaults = defaults
    self.ping = ping
    self.targets = targets
    self.multicast = multicast
    self.beacons = beacons
    self.querierWatch = querierWatch
    self.push = push
  }
}

/// Address family preference of a target.
public enum FamilyPreference: String, Sendable, Equatable, CaseIterable {
  /// The system resolver's first answer (getaddrinfo orders by RFC 6724 and /etc/gai.conf).
  case auto
  case ip4
  case ip6
}

/// Which ICMP socket kind a target uses.
public enum SocketMode: String, Sendable, Equatable, CaseIterable {
  /// A datagram ping socket when `net.ipv4.ping_group_range` admits us, else raw.
  case auto
  /// Unprivileged `SOCK_DGRAM` / `IPPROTO_ICMP` only.
  case dgram
  /// `SOCK_RAW`, which needs CAP_NET_RAW.
  case raw
}

/// Probe settings that `defaults` sets for all targets and each target may override.
///
/// Copy-on-write over one shared storage: every target starts as a copy of `defaults` and
/// most change nothing, so 600,000 targets share one set of options instead of holding
/// 600,000 copies of 200 bytes (a 16 MiB file of targets must parse in under 200 MiB).
public struct ProbeOptions: Sendable, Equatable {
  struct Values: Sendable, Equatable {
    var interval: Duration = .seconds(1)
    var timeout: Duration = .seconds(1)
    var payloadSize: Int = 56
    var ttl: Int = 64
    var tos: Int = 0
    var dontFragment: Bool = false
    var source: IPAddress? = nil
    var interface: String? = nil
    var family: FamilyPreference = .auto
    var socket: SocketMode = .auto
    var window: Int = 100
    var dnsRefresh: Duration = .seconds(300)
    var trace: TraceOptions = TraceOptions()
    var labels: [Label] = []
    var series: SeriesChoice = SeriesChoice()
  }

  /// Written only while uniquely referenced (`modify`), so sharing it between threads is
  /// sharing an immutable value.
  private final class Storage: @unchecked Sendable {
    var values: Values
    init(_ values: Values) { self.values = values }
  }

  private static let defaultStorage = Storage(Values())
  private var storage: Storage

  public init() { storage = Self.defaultStorage }

  private mutating func modify(_ body: (inout Values) -> Void) {
    if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.values) }
    body(&storage.values)
  }

  public static func == (a: ProbeOptions, b: ProbeOptions) -> Bool {
    a.storage === b.storage || a.storage.values == b.storage.values
  }

  public var interval: Duration {
    get { storage.values.interval }
    set { modify { $0.interval = newValue } }
  }

  public var timeout: Duration {
    get { storage.values.timeout }
    set { modify { $0.timeout = newValue } }
  }

  /// ICMP payload bytes after the 8-byte echo header.
  public var payloadSize: Int {
    get { storage.values.payloadSize }
    set { modify { $0.payloadSize = newValue } }
  }

  public var ttl: Int {
    get { storage.values.ttl }
    set { modify { $0.ttl = newValue } }
  }

  public var tos: Int {
    get { storage.values.tos }
    set { modify { $0.tos = newValue } }
  }

  public var dontFragment: Bool {
    get { storage.values.dontFragment }
    set { modify { $0.dontFragment = newValue } }
  }

  public var source: IPAddress? {
    get { storage.values.source }
    set { modify { $0.source = newValue } }
  }

  public var interface: String? {
    get { storage.values.interface }
    set { modify { $0.interface = newValue } }
  }

  public var family: FamilyPreference {
    get { storage.values.family }
    set { modify { $0.family = newValue } }
  }

  public var socket: SocketMode {
    get { storage.values.socket }
    set { modify { $0.socket = newValue } }
  }

  /// Probes in the window behind the loss, RTT and jitter gauges.
  public var window: Int {
    get { storage.values.window }
    set { modify { $0.window = newValue } }
  }

  /// How often DNS names are resolved again.
  public var dnsRefresh: Duration {
    get { storage.values.dnsRefresh }
    set { modify { $0.dnsRefresh = newValue } }
  }

  public var trace: TraceOptions {
    get { storage.values.trace }
    set { modify { $0.trace = newValue } }
  }

  /// Labels added to every series of the target.
  public var labels: [Label] {
    get { storage.values.labels }
    set { modify { $0.labels = newValue } }
  }

  /// Which of the target's optional families are exported.
  public var series: SeriesChoice {
    get { storage.values.series }
    set { modify { $0.series = newValue } }
  }
}

/// The families an operator may turn off per target, because each multiplies by targets
/// and every series costs Prometheus memory: at 10,000 targets one series per target is
/// 10,000 series. Turning one off changes what is exported, never what is measured, so a
/// reload that flips a switch keeps the target's counters (`measuresSameAs` ignores it).
/// Every switch is on by default: a configuration without `series` exports what it always did.
public struct SeriesChoice: Sendable, Equatable {
  /// The `le` buckets of `netprobe_ping_rtt_seconds`. Off, the histogram keeps only its
  /// `+Inf` bucket, `_sum` and `_count` (mean RTT from `rate`), as a client library
  /// exposes a histogram without classic buckets in the text format.
  public var classicBuckets = true
  /// The window gauges: `netprobe_ping_window_probes`, `_loss_ratio`, `_rtt_min_seconds`,
  /// `_rtt_mean_seconds`, `_rtt_max_seconds`, `_rtt_stddev_seconds` and `_jitter_seconds`.
  public var windowGauges = true
  /// The per-hop path families: `netprobe_path_hop_info`, `_hop_rtt_seconds` and
  /// `_hop_loss_ratio` (one series per hop, or per responder, of each traced target).
  public var hopSeries = true

  public init() {}
}

/// Path tracing settings (TTL-limited probes).
public struct TraceOptions: Sendable, Equatable {
  public var enabled = false
  public var interval: Duration = .seconds(60)
  public var maxHops = 30
  public var probesPerHop = 3
  /// Consecutive rounds that must agree before a different path counts as a change.
  public var confirmRounds = 2
  /// Vary the flow identity per probe to reveal parallel (ECMP) branches.
  public var varyFlow = false
  /// What the probes are: ICMP echo requests (their checksum names the flow) or UDP
  /// datagrams (their ports name it), the `protocol` key.
  public var probeProtocol: TraceProtocol = .icmp

  public init() {}

  /// Whether a path traced with `other` is the one traced with these settings: the same
  /// hops probed the same way. `interval` and `confirm_rounds` only change how often and how
  /// cautiously the same path is watched, so a path survives a reload that changes them.
  public func tracesSamePathAs(_ other: TraceOptions) -> Bool {
    maxHops == other.maxHops && probesPerHop == other.probesPerHop && varyFlow == other.varyFlow
      && probeProtocol == other.probeProtocol
  }
}

/// The protocol of the path tracer's probes. Load balancers hash different fields: ICMP
/// probes reach the branches of balancers that hash the addresses (and the ICMP identifier
/// or checksum); only UDP probes, whose ports vary, reach the branches of 5-tuple hashers
/// (Linux `fib_multipath_hash_policy=1`, most hardware routers).
public enum TraceProtocol: String, Sendable, Equatable, CaseIterable {
  case icmp
  case udp
}

/// Settings of the ping engine as a whole.
public struct PingSettings: Sendable, Equatable {
  /// Upper bounds of the RTT histogram in seconds: smokeping_prober's default, 50 µs × 2^k,
  /// so dashboards built for it carry over.
  /// smokeping_prober's ExponentialBuckets(50µs, 2, 20), up to 26.2 s, so its dashboards carry over.
  public var rttBuckets: [Double] = (0..<20).map { 0.00005 * Double(1 << $0) }
  /// The native histogram kept beside the RTT (and one-way delay) histograms; nil (the
  /// default) keeps only the classic buckets, as before native histograms existed.
  public var nativeHistograms: NativeHistogramSettings?
  /// How often the ICMP identifier is replaced by a new random one; nil keeps it.
  public var identifierRotation: Duration?

  public init() {}

  /// The buckets of the RTT and one-way delay histograms.
  public var rttLayout: HistogramLayout { HistogramLayout(upperBounds: rttBuckets, native: nativeHistograms) }
}

/// A custom label: a valid Prometheus label name and any value.
public struct Label: Sendable, Equatable {
  public var name: String
  public var value: String

  public init(_ name: String, _ value: String) {
    self.name = name
    self.value = value
  }
}

/// One ICMP target.
public struct TargetConfig: Sendable, Equatable {
  public var name: String
  /// A DNS name or an IP literal, as written.
  public var host: String
  /// The address when `host` is a literal.
  public var address: IPAddress? { IPAddress(host) }
  /// The defaults with this target's overrides applied; labels are the defaults' labels
  /// followed by the target's own (which win on a clash).
  public var options: ProbeOptions
  public var location: SourceLocation

  public init(name: String, host: String, options: ProbeOptions, location: SourceLocation) {
    self.name = name
    self.host = host
    self.options = options
    self.location = location
  }

  /// Whether `other`, from a reloaded configuration, measures what this target measures,
  /// so that it keeps this one's counters, window and path: the same name (its series
  /// identity), host, and the settings that shape the probe on the wire or pick the address
  /// and socket (payload size, TTL, ToS, DF, source, interface, family, socket kind). Any of
  /// those changed is another measurement, and starts afresh. Interval, timeout, window,
  /// DNS refresh, trace timing and labels only change how often or under which labels the
  /// same thing is measured.
  public func measuresSameAs(_ other: TargetConfig) -> Bool {
    let a = options
    let b = other.options
    return name == other.name && host == other.host && a.payloadSize == b.payloadSize && a.ttl == b.ttl
      && a.tos == b.tos && a.dontFragment == b.dontFragment && a.source == b.source && a.interface == b.interface
      && a.family == b.family && a.socket == b.socket
  }
}

/// Payload formats a multicast receiver decodes.
public enum PayloadFormat: String, Sendable, Equatable, CaseIterable {
  /// Counts packets and bytes only.
  case raw
  /// This project's beacon: magic, version, stream id, sender id, sequence, send time.
  case beacon
  /// RTP (RFC 3550): sequence, SSRC and interarrival jitter.
  case rtp
  /// MPEG transport stream, alone or inside RTP: continuity counters and sync.
  case mpegts
  /// A sequence number at a configured offset (market-data feeds).
  case sequence
}

/// Where a `sequence` format finds its counter.
public struct SequenceField: Sendable, Equatable {
  public enum Endianness: String, Sendable, Equatable, CaseIterable {
    case big
    case little
  }

  public var offset: Int
  /// Bytes: 2, 4 or 8.
  public var width: Int
  public var endianness: Endianness

  public init(offset: Int, width: Int, endianness: Endianness) {
    self.offset = offset
    self.width = width
    self.endianness = endianness
  }
}

/// A periodic leave-and-rejoin that measures join latency.
public struct JoinLatencyTest: Sendable, Equatable {
  public var interval: Duration
  /// Time between the leave and the new join, so the router really prunes the group: 3 s
  /// by default, longer than the Last Member Query Time with the standard timers (IGMPv2/v3
  /// and MLD: 2 queries 1 s apart, RFC 2236 8.8, RFC 3376 8.14, RFC 3810 9.14) after which
  /// the querier stops forwarding. At 2 s the new join could meet a group never pruned,
  /// and the test would time nothing.
  public var leaveWait: Duration = .seconds(3)
  /// A join with no packet within this time counts as a failure.
  public var deadline: Duration = .seconds(10)

  public init(interval: Duration) { self.interval = interval }
}

/// One multicast group to join and watch.
public struct MulticastGroupConfig: Sendable, Equatable {
  /// A second of a 60 Mbit/s stream, so a scheduling hiccup of the receiver thread loses
  /// nothing.
  public static let defaultReceiveBuffer = 8 << 20
  public static let receiveBufferRange = 4096...(1 << 30)

  public var name: String
  public var group: IPAddress
  public var port: Int
  public var interface: String
  /// Sources for a source-specific join; empty for any-source.
  public var sources: [IPAddress]
  public var format: PayloadFormat
  public var sequenceField: SequenceField?
  /// RTP clock rate in Hz for jitter, when the payload type has no standard one.
  public var clockRate: Int?
  /// Packets per second the sender is expected to send.
  public var expectedRate: Double?
  public var noDataTimeout: Duration
  /// mpegts: silence after which the stream is taken as restarted (a discontinuity).
  public var restartGap: Duration
  /// The socket receive buffer to ask for, in bytes (the kernel may grant less).
  public var receiveBuffer: Int
  /// The sender's and our clocks agree (PTP/NTP), so one-way delay means something.
  public var clockSynchronized: Bool
  public var joinLatencyTest: JoinLatencyTest?
  public var labels: [Label]
  public var location: SourceLocation

  public init(
    name: String, group: IPAddress, port: Int, interface: String, sources: [IPAddress] = [],
    format: PayloadFormat = .raw, sequenceField: SequenceField? = nil, clockRate: Int? = nil,
    expectedRate: Double? = nil, noDataTimeout: Duration = .seconds(5), restartGap: Duration = .milliseconds(500),
    receiveBuffer: Int = MulticastGroupConfig.defaultReceiveBuffer, clockSynchronized: Bool = false,
    joinLatencyTest: JoinLatencyTest? = nil, labels: [Label] = [], location: SourceLocation
  ) {
    self.name = name
    self.group = group
    self.port = port
    self.interface = interface
    self.sources = sources
    self.format = format
    self.sequenceField = sequenceField
    self.clockRate = clockRate
    self.expectedRate = expectedRate
    self.noDataTimeout = noDataTimeout
    self.restartGap = restartGap
    self.receiveBuffer = receiveBuffer
    self.clockSynchronized = clockSynchronized
    self.joinLatencyTest = joinLatencyTest
    self.labels = labels
    self.location = location
  }

  /// Whether `other`, from a reloaded configuration, receives and measures what this group
  /// does, so it keeps this one's join and counters: everything but its labels, its
  /// `expected_rate` and `no_data_timeout` (which only change how the same traffic is
  /// judged and labelled) and its place in the file. A setting added later counts as
  /// identity until it is listed here.
  public func measuresSameAs(_ other: MulticastGroupConfig) -> Bool {
    func identity(_ config: MulticastGroupConfig) -> MulticastGroupConfig {
      var copy = config
      copy.labels = []
      copy.expectedRate = nil
      copy.noDataTimeout = .zero
      copy.location = SourceLocation(line: 0, column: 0)
      return copy
    }
    return identity(self) == identity(other)
  }
}

/// A beacon this agent sends, so other agents can measure their reception of it.
public struct BeaconConfig: Sendable, Equatable {
  public var name: String
  public var group: IPAddress
  public var port: Int
  public var interface: String
  /// Packets per second.
  public var rate: Double
  public var ttl: Int
  /// UDP payload bytes.
  public var size: Int
  public var streamID: UInt32
  public var location: SourceLocation

  public init(
    name: String, group: IPAddress, port: Int, interface: String, rate: Double = 10, ttl: Int = 1,
    size: Int = 64, streamID: UInt32 = 1, location: SourceLocation
  ) {
    self.name = name
    self.group = group
    self.port = port
    self.interface = interface
    self.rate = rate
    self.ttl = ttl
    self.size = size
    self.streamID = streamID
    self.location = location
  }
}

/// A multicast group management protocol whose queriers the watch listens for.
public enum QuerierProtocol: String, Sendable, Hashable, CaseIterable {
  /// IGMP (IPv4): versions 1, 2 and 3.
  case igmp
  /// MLD (IPv6): versions 1 and 2.
  case mld
}

/// The IGMP/MLD querier watch.
public struct QuerierWatchConfig: Sendable, Equatable {
  public var interfaces: [String]
  /// What to watch on every interface. IGMP alone by default, so an IPv4-only network does
  /// not report a missing MLD querier.
  public var protocols: [QuerierProtocol] = [.igmp]
  /// The network's query interval, until a query announces one (IGMPv1/v2 and MLDv1 do not).
  public var queryInterval: Duration?
  /// The network's max response time, until a query announces one (IGMPv1 queries do not).
  public var queryResponseInterval: Duration = .seconds(10)
  /// The network's robustness variable, until a query announces one (QRV of IGMPv3 / MLDv2).
  public var robustness = 2

  public init(interfaces: [String]) { self.interfaces = interfaces }
}

/// Pushing to a Prometheus Pushgateway.
public struct PushConfig: Sendable, Equatable {
  public struct BasicAuth: Sendable, Equatable {
    public var username: String
    /// Read at every push, so a rotated secret needs no reload.
    public var passwordFile: String
  }

  public struct TLS: Sendable, Equatable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var insecureSkipVerify = false
  }

  public var url: String
  public var job = "netprobe"
  /// The `instance` grouping label; nil means the host name.
  public var instance: String?
  /// Further grouping labels, in order.
  public var grouping: [Label] = []
  public var interval: Duration = .seconds(15)
  public var timeout: Duration = .seconds(5)
  public var basicAuth: BasicAuth?
  public var tls = TLS()
  public var proxyURL: String?
  public var gzip = false
  public var deleteOnShutdown = false

  public init(url: String) { self.url = url }
}
