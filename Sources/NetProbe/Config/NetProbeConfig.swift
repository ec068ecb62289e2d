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

  public init(defaults: ProbeOptions = ProbeOptions(), ping: PingSettings = PingSettings(),
              targets: [TargetConfig] = [], multicast: [MulticastGroupConfig] = [],
              beacons: [BeaconConfig] = [], querierWatch: QuerierWatchConfig? = nil, push: PushConfig? = nil) {
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
public struct ProbeOptions: Sendable, Equatable {
  public var interval: Duration = .seconds(1)
  public var timeout: Duration = .seconds(1)
  /// ICMP payload bytes after the 8-byte echo header.
  public var payloadSize = 56
  public var ttl = 64
  public var tos = 0
  public var dontFragment = false
  public var source: IPAddress?
  public var interface: String?
  public var family = FamilyPreference.auto
  public var socket = SocketMode.auto
  /// Probes in the window behind the loss, RTT and jitter gauges.
  public var window = 100
  /// How often DNS names are resolved again.
  public var dnsRefresh: Duration = .seconds(300)
  public var trace = TraceOptions()
  /// Labels added to every series of the target.
  public var labels: [Label] = []

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

  public init() {}
}

/// Settings of the ping engine as a whole.
public struct PingSettings: Sendable, Equatable {
  /// Upper bounds of the RTT histogram in seconds: smokeping_prober's default, 50 µs × 2^k,
  /// so dashboards built for it carry over.
  /// smokeping_prober's ExponentialBuckets(50µs, 2, 20), up to 26.2 s, so its dashboards carry over.
  public var rttBuckets: [Double] = (0..<20).map { 0.00005 * Double(1 << $0) }
  /// How often the ICMP identifier is replaced by a new random one; nil keeps it.
  public var identifierRotation: Duration?

  public init() {}
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

  public init(name: String, group: IPAddress, port: Int, interface: String, sources: [IPAddress] = [],
              format: PayloadFormat = .raw, sequenceField: SequenceField? = nil, clockRate: Int? = nil,
              expectedRate: Double? = nil, noDataTimeout: Duration = .seconds(5), restartGap: Duration = .milliseconds(500),
              receiveBuffer: Int = MulticastGroupConfig.defaultReceiveBuffer, clockSynchronized: Bool = false,
              joinLatencyTest: JoinLatencyTest? = nil, labels: [Label] = [], location: SourceLocation) {
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

  public init(name: String, group: IPAddress, port: Int, interface: String, rate: Double = 10, ttl: Int = 1,
              size: Int = 64, streamID: UInt32 = 1, location: SourceLocation) {
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
