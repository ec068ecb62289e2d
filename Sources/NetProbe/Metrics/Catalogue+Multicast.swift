/// The multicast side of the catalogue: reception per stream, the beacons this agent sends,
/// and the IGMP / MLD querier watch.
extension Catalogue {
  // MARK: Multicast reception (per stream: name, group, source ("" for any-source), port, interface, then the group's labels)

  static let streamLabels = ["name", "group", "source", "port", "interface"]

  public static let multicastMembership = MetricFamily(
    "netprobe_multicast_membership", .gauge,
    "1 when the join succeeded and the kernel's membership table (/proc/net/igmp, mcfilter, igmp6, mcfilter6) lists it, else 0.",
    labels: streamLabels)

  public static let multicastPackets = MetricFamily(
    "netprobe_multicast_packets_received_total", .counter,
    "Datagrams received for the group from this source in the group's format; malformed ones count only as unexpected.",
    labels: streamLabels)

  public static let multicastBytes = MetricFamily(
    "netprobe_multicast_bytes_received_total", .counter, "UDP payload bytes of the datagrams received.", labels: streamLabels)

  public static let multicastLastPacket = MetricFamily(
    "netprobe_multicast_last_packet_timestamp_seconds", .gauge,
    "Unix time of the last datagram (kernel receive time); absent until one arrives.", labels: streamLabels)

  public static let multicastReceiving = MetricFamily(
    "netprobe_multicast_receiving", .gauge,
    "1 when a datagram arrived within the group's no_data_timeout, else 0.", labels: streamLabels)

  public static let multicastJoinLatency = MetricFamily(
    "netprobe_multicast_join_latency_seconds", .gauge,
    "Time from the last join to its first datagram; absent until one arrives.", labels: streamLabels)

  public static let multicastRate = MetricFamily(
    "netprobe_multicast_rate_packets_per_second", .gauge,
    "Datagrams per second over the last complete seconds (up to 9); 0 once the stream is silent for no_data_timeout.",
    labels: streamLabels)

  public static let multicastRateDeviation = MetricFamily(
    "netprobe_multicast_rate_deviation_ratio", .gauge,
    "Measured rate over expected_rate, minus 1: 0 on target, -1 when nothing arrives or the stream is silent for no_data_timeout (only with expected_rate).",
    labels: streamLabels)

  public static let multicastLost = MetricFamily(
    "netprobe_multicast_packets_lost_total", .counter,
    "Sequence numbers never received: a hole counted once 64 numbers behind the newest (reordering within 64 is not loss), at a sender restart, or when the stream is silent for no_data_timeout; lost / (lost + received - duplicate) is the loss ratio.",
    labels: streamLabels)

  public static let multicastDuplicates = MetricFamily(
    "netprobe_multicast_packets_duplicate_total", .counter,
    "Datagrams that bring no new sequence number: a copy of a received one, one that came after its number was counted lost (over 64 late), or a lone number far from the stream.",
    labels: streamLabels)

  public static let multicastLate = MetricFamily(
    "netprobe_multicast_packets_late_total", .counter,
    "Datagrams that arrived after a higher sequence number in time (within 64) to fill their hole: reordered, never counted lost.",
    labels: streamLabels)

  public static let multicastResets = MetricFamily(
    "netprobe_multicast_sequence_resets_total", .counter,
    "Sender restarts: a jump of the sequence too large to be loss that the next number confirms, or a new RTP SSRC after the first (each SSRC has its own sequence).",
    labels: streamLabels)

  public static let multicastJitter = MetricFamily(
    "netprobe_multicast_jitter_seconds", .gauge,
    "Interarrival jitter (RFC 3550 A.8) in seconds: RTP from the payload type's clock or clock_rate, beacon from its send time; the worst sender heard in the 10 s before the last packet; absent once the stream is silent for no_data_timeout.",
    labels: streamLabels)

  public static let multicastOneWayDelay = MetricFamily(
    "netprobe_multicast_one_way_delay_seconds", .histogram,
    "Beacon send time to kernel receive time; only for groups with clock_synchronized.", labels: streamLabels)

  public static let multicastMPEGTSErrors = MetricFamily(
    "netprobe_multicast_mpegts_errors_total", .counter,
    "MPEG-TS errors by type: continuity (CC), sync_byte, transport_error (TEI), pat_missing (PID 0 absent over 0.5 s).",
    labels: streamLabels + ["type"])

  public static let multicastMPEGTSDiscontinuities = MetricFamily(
    "netprobe_multicast_mpegts_discontinuities_total", .counter,
    "MPEG-TS stream restarts by reason, which restart the continuity and PAT checks instead of counting errors: silence (over restart_gap), ssrc_change (a new RTP SSRC), indicator (discontinuity_indicator on a followed PID).",
    labels: streamLabels + ["reason"])

  public static let multicastSocketDrops = MetricFamily(
    "netprobe_multicast_socket_drops_total", .counter,
    "Datagrams dropped inside this host because the socket buffer was full (SO_RXQ_OVFL), apart from network loss.",
    labels: streamLabels)

  public static let multicastUnexpected = MetricFamily(
    "netprobe_multicast_unexpected_packets_total", .counter,
    "Datagrams ignored, by reason: wrong_source (not a listed source), wrong_group (sent to another group), malformed (not the group's format).",
    labels: streamLabels + ["reason"])

  public static let multicastJoinErrors = MetricFamily(
    "netprobe_multicast_join_errors_total", .counter,
    "Failed joins by errno, once per episode: failures with one errno, retried every second, count 1 until a join succeeds or the errno changes.",
    labels: streamLabels + ["errno"])

  public static let multicastJoinTestLatency = MetricFamily(
    "netprobe_multicast_join_test_latency_seconds", .histogram,
    "Join latency test: time from a fresh join (after a leave) to the first datagram.", labels: streamLabels)

  public static let multicastJoinTestFailures = MetricFamily(
    "netprobe_multicast_join_test_failures_total", .counter,
    "Join latency tests with no datagram before the deadline.", labels: streamLabels)

  // MARK: Beacons this agent sends (name, group, port, interface)

  static let beaconLabels = ["name", "group", "port", "interface"]

  public static let beaconInfo = MetricFamily(
    "netprobe_beacon_info", .gauge,
    "Always 1 per beacon: the stream id and this agent's sender id in its packets.",
    labels: beaconLabels + ["stream_id", "sender_id"])

  public static let beaconPacketsSent = MetricFamily(
    "netprobe_beacon_packets_sent_total", .counter, "Beacon datagrams sent.", labels: beaconLabels)

  public static let beaconBytesSent = MetricFamily(
    "netprobe_beacon_bytes_sent_total", .counter, "Beacon UDP payload bytes sent.", labels: beaconLabels)

  public static let beaconPacketsSkipped = MetricFamily(
    "netprobe_beacon_packets_skipped_total", .counter,
    "Beacon datagrams not sent because the sender fell more than one interval behind its schedule (descheduled, or a rate the host cannot sustain): skipped rather than sent in a burst, without a sequence number, so receivers count no loss for them.",
    labels: beaconLabels)

  public static let beaconSendErrors = MetricFamily(
    "netprobe_beacon_send_errors_total", .counter,
    "Beacon datagrams that could not be sent, by errno; a socket that cannot be opened (ENODEV: no such interface) counts once per episode, not per retry.",
    labels: beaconLabels + ["errno"])

  // MARK: Querier watch (interface, protocol igmp|mld)

  static let querierLabels = ["interface", "protocol"]

  public static let querierPresent = MetricFamily(
    "netprobe_querier_present", .gauge,
    "1 while general queries arrive: 0 once none came within robustness × query interval + max response / 2 (255 s with the standard timers). 1 as well for that long after the watch starts listening on the interface (agent start, interface back), since silence proves nothing sooner; 0 while it cannot listen and heard none.",
    labels: querierLabels)

  public static let querierInfo = MetricFamily(
    "netprobe_querier_info", .gauge,
    "Always 1: the address and version (IGMP 1–3, MLD 1–2) of the last general query's sender (0.0.0.0 from proxy-querying switches); kept after it falls silent.",
    labels: querierLabels + ["querier", "version"])

  public static let querierQueries = MetricFamily(
    "netprobe_querier_queries_received_total", .counter,
    "IGMP / MLD queries received, by version and kind (general, group, group_source); a series appears with its first query.",
    labels: querierLabels + ["version", "kind"])

  public static let querierLastGeneralQuery = MetricFamily(
    "netprobe_querier_last_general_query_timestamp_seconds", .gauge,
    "Unix time of the last general query; absent until one arrives.", labels: querierLabels)

  public static let querierQueryInterval = MetricFamily(
    "netprobe_querier_query_interval_seconds", .gauge,
    "Query interval the querier announced (QQIC of IGMPv3 / MLDv2), the last one announced; absent until one is. IGMPv1/v2 and MLDv1 announce none: the timeout then uses the configured query_interval, else 125 s.",
    labels: querierLabels)

  public static let querierMaxResponse = MetricFamily(
    "netprobe_querier_max_response_seconds", .gauge,
    "Maximum response time in force: the last one a general query announced, else the configured query_response_interval (IGMPv1 announces none).",
    labels: querierLabels)

  public static let querierRobustness = MetricFamily(
    "netprobe_querier_robustness", .gauge,
    "Robustness variable in force: the last QRV a general query announced (IGMPv3 / MLDv2), else the configured robustness.",
    labels: querierLabels)

  public static let querierMalformed = MetricFamily(
    "netprobe_querier_malformed_packets_total", .counter,
    "IGMP / MLD packets ignored as malformed: truncated, a bad checksum, a layout no version defines (its length, a group that is not multicast, sources in a general query), or an MLD query hosts drop (source not link-local, hop limit not 1, no Router Alert). Reports are not counted.",
    labels: querierLabels)

  static let multicastFamilies: [MetricFamily] = [
    multicastMembership, multicastPackets, multicastBytes, multicastLastPacket, multicastReceiving, multicastJoinLatency,
    multicastRate, multicastRateDeviation, multicastLost, multicastDuplicates, multicastLate, multicastResets, multicastJitter,
    multicastOneWayDelay, multicastMPEGTSErrors, multicastMPEGTSDiscontinuities, multicastSocketDrops, multicastUnexpected,
    multicastJoinErrors,
    multicastJoinTestLatency, multicastJoinTestFailures,
  ]

  static let beaconFamilies: [MetricFamily] = [beaconInfo, beaconPacketsSent, beaconBytesSent, beaconPacketsSkipped, beaconSendErrors]

  static let querierFamilies: [MetricFamily] = [
    querierPresent, querierInfo, querierQueries, querierLastGeneralQuery, querierQueryInterval, querierMaxResponse,
    querierRobustness, querierMalformed,
  ]
}
