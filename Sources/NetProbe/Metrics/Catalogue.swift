/// Every metric family the exporter can expose, in one place.
///
/// Names follow the Prometheus conventions: a `netprobe_` prefix, base units (seconds,
/// bytes, ratios 0–1) in the name, `_total` on counters, `_info` on info series (value 1),
/// and no timestamps. The README's metrics reference lists exactly these families; a test
/// compares the two. `process_*` families mirror the Go client's process collector.
public enum Catalogue {
  // MARK: Build and configuration

  public static let buildInfo = MetricFamily(
    "netprobe_build_info", .gauge,
    "Always 1; the version and source revision of the running exporter.",
    labels: ["version", "revision"])

  public static let configLastReloadSuccessful = MetricFamily(
    "netprobe_config_last_reload_successful", .gauge,
    "1 if the last load of the configuration file succeeded, 0 if it failed and the previous configuration is still running.")

  public static let configLastReloadSuccessTimestamp = MetricFamily(
    "netprobe_config_last_reload_success_timestamp_seconds", .gauge,
    "Unix time of the last successful load of the configuration file.")

  public static let configReloads = MetricFamily(
    "netprobe_config_reloads_total", .counter,
    "Configuration reloads attempted (SIGHUP or POST /-/reload), by result.",
    labels: ["result"])

  public static let configItems = MetricFamily(
    "netprobe_config_items", .gauge,
    "Items in the running configuration, by kind (targets, multicast_groups, beacons, querier_interfaces).",
    labels: ["kind"])

  // MARK: Scrapes

  public static let scrapeCollectorDuration = MetricFamily(
    "netprobe_scrape_collector_duration_seconds", .gauge,
    "How long each collector (agent, target_files, process, http, ping, path, multicast, beacon, querier, push) took to render its series for this scrape or push.",
    labels: ["collector"])

  // MARK: HTTP server

  public static let httpRequests = MetricFamily(
    "netprobe_http_requests_total", .counter,
    "HTTP requests answered, by handler and status code.",
    labels: ["handler", "code"])

  public static let httpOpenConnections = MetricFamily(
    "netprobe_http_open_connections", .gauge,
    "HTTP connections currently open.")

  public static let httpRejectedConnections = MetricFamily(
    "netprobe_http_rejected_connections_total", .counter,
    "HTTP connections answered 503 and closed because the connection limit (overall or per client address) was reached while every connection was answering a request."
  )

  public static let httpEvictedConnections = MetricFamily(
    "netprobe_http_evicted_connections_total", .counter,
    "HTTP connections the server closed to keep serving, by reason: idle or incomplete_request (closed to admit a newcomer at a connection limit), pressure_timeout (no complete request within the tighter deadline under pressure), unread_response (a response not acknowledged within the write timeout).",
    labels: ["reason"])

  public static let httpAuthFailures = MetricFamily(
    "netprobe_http_auth_failures_total", .counter,
    "Requests refused by basic auth (--web.config.file basic_auth_users), by reason: missing (no or malformed credentials), wrong_credentials (unknown user or wrong password), throttled (429: too many new credentials to check with bcrypt).",
    labels: ["reason"])

  public static let httpTLSHandshakeFailures = MetricFamily(
    "netprobe_http_tls_handshake_failures_total", .counter,
    "TLS connections closed before their handshake completed, by reason: error (protocol error, refused client certificate, peer gone), plain_http (a plain HTTP request to the TLS port, answered 400), timeout (no handshake within the deadline).",
    labels: ["reason"])

  public static let httpAcceptErrors = MetricFamily(
    "netprobe_http_accept_errors_total", .counter,
    "Failed accepts of HTTP connections, by errno (EMFILE/ENFILE: out of file descriptors).",
    labels: ["errno"])

  // MARK: Ping (per target: target, host, address, family, then the target's labels)

  static let targetLabels = ["target", "host", "address", "family"]

  public static let pingTargetInfo = MetricFamily(
    "netprobe_ping_target_info", .gauge,
    "Always 1 per target: the address probed (the resolved one for DNS names) and the socket kind in use.",
    labels: targetLabels + ["socket"])

  public static let pingSent = MetricFamily(
    "netprobe_ping_packets_sent_total", .counter,
    "Echo requests handed to the kernel, those it refused included (see netprobe_ping_send_errors_total): a refused probe counts as lost.",
    labels: targetLabels)

  public static let pingReceived = MetricFamily(
    "netprobe_ping_packets_received_total", .counter,
    "Echo replies received before their probe's deadline (duplicates and late replies excluded).", labels: targetLabels)

  public static let pingDuplicates = MetricFamily(
    "netprobe_ping_packets_duplicate_total", .counter,
    "Echo replies to a probe that was already answered.", labels: targetLabels)

  public static let pingLate = MetricFamily(
    "netprobe_ping_packets_late_total", .counter,
    "Echo replies that arrived after their probe's deadline; the probe counts as lost.", labels: targetLabels)

  public static let pingSendErrors = MetricFamily(
    "netprobe_ping_send_errors_total", .counter,
    "Echo requests that could not be sent, by errno: refused by sendto (also in packets_sent_total and lost), or EACCES/EPERM when no socket could be opened (no probe: in neither).",
    labels: targetLabels + ["errno"])

  public static let pingRTT = MetricFamily(
    "netprobe_ping_rtt_seconds", .histogram,
    "Round-trip time of replies received in time, from the kernel's receive timestamp.", labels: targetLabels)

  public static let pingWindowProbes = MetricFamily(
    "netprobe_ping_window_probes", .gauge,
    "Probes decided (answered or lost) in the window behind the loss, RTT and jitter gauges.", labels: targetLabels)

  public static let pingLossRatio = MetricFamily(
    "netprobe_ping_loss_ratio", .gauge,
    "Share of the probes in the window that got no reply in time, 0 to 1; absent until a probe is decided.", labels: targetLabels)

  public static let pingRTTMin = MetricFamily(
    "netprobe_ping_rtt_min_seconds", .gauge, "Lowest RTT in the window.", labels: targetLabels)

  public static let pingRTTMean = MetricFamily(
    "netprobe_ping_rtt_mean_seconds", .gauge, "Mean RTT in the window.", labels: targetLabels)

  public static let pingRTTMax = MetricFamily(
    "netprobe_ping_rtt_max_seconds", .gauge, "Highest RTT in the window.", labels: targetLabels)

  public static let pingRTTStandardDeviation = MetricFamily(
    "netprobe_ping_rtt_stddev_seconds", .gauge, "Standard deviation of the RTTs in the window.", labels: targetLabels)

  public static let pingJitter = MetricFamily(
    "netprobe_ping_jitter_seconds", .gauge,
    "Mean absolute difference of consecutive RTTs in the window.", labels: targetLabels)

  public static let pingJitterRFC3550 = MetricFamily(
    "netprobe_ping_jitter_rfc3550_seconds", .gauge,
    "Smoothed jitter of the RTTs, the RFC 3550 estimator J += (|D| - J) / 16.", labels: targetLabels)

  public static let pingReplyTTL = MetricFamily(
    "netprobe_ping_reply_ttl", .gauge,
    "TTL (IPv4) or hop limit (IPv6) of the last reply.", labels: targetLabels)

  public static let pingDNSFailures = MetricFamily(
    "netprobe_ping_dns_lookup_failures_total", .counter,
    "Failed DNS lookups of a target given by name; the last good address stays in use.", labels: ["target", "host"])

  public static let pingUnexpected = MetricFamily(
    "netprobe_ping_packets_unexpected_total", .counter,
    "ICMP messages ignored because they answer no probe of ours, by reason (malformed, foreign, bad_nonce, unknown_probe, wrong_source, corrupt).",
    labels: ["family", "reason"])

  public static let pingSocketErrors = MetricFamily(
    "netprobe_ping_socket_errors_total", .counter,
    "Failed attempts to open an ICMP socket, by family, socket kind and errno (retried every minute).",
    labels: ["family", "socket", "errno"])

  // MARK: Path (per traced target: the target labels, then hop where it applies)

  public static let pathHops = MetricFamily(
    "netprobe_path_hops", .gauge,
    "Hops on the confirmed path: to the destination's TTL, to the TTL at which a router answered Destination Unreachable, or to the last hop that answered.",
    labels: targetLabels)

  public static let pathReached = MetricFamily(
    "netprobe_path_destination_reached", .gauge,
    "1 if the destination answered in the last trace round, else 0.", labels: targetLabels)

  public static let pathChanges = MetricFamily(
    "netprobe_path_changes_total", .counter,
    "Path changes confirmed by consecutive trace rounds (silent hops never count as a change).", labels: targetLabels)

  public static let pathLastChange = MetricFamily(
    "netprobe_path_last_change_timestamp_seconds", .gauge,
    "Unix time of the last confirmed path change; absent until one happens.", labels: targetLabels)

  public static let pathHash = MetricFamily(
    "netprobe_path_hash", .gauge,
    "A 32-bit hash of the confirmed hop list that netprobe_path_hop_info shows: it changes exactly when that list does (a confirmed change, a silent hop first answering, an ECMP responder learned or aged out).",
    labels: targetLabels)

  public static let pathHopInfo = MetricFamily(
    "netprobe_path_hop_info", .gauge,
    "Always 1: one series per responder at each hop of the confirmed path (several under ECMP; responder=\"*\" for a silent hop). A responder unseen for 10 rounds while another answers at its hop is dropped.",
    labels: targetLabels + ["hop", "responder"])

  public static let pathHopRTT = MetricFamily(
    "netprobe_path_hop_rtt_seconds", .gauge,
    "Mean RTT of a hop's replies over the last 10 trace rounds.", labels: targetLabels + ["hop"])

  public static let pathHopLoss = MetricFamily(
    "netprobe_path_hop_loss_ratio", .gauge,
    "Share of a hop's probes without a reply over the last 10 trace rounds, 0 to 1 (routers that rate-limit ICMP show loss here, not on the path).",
    labels: targetLabels + ["hop"])

  public static let pathUnreachable = MetricFamily(
    "netprobe_path_unreachable_total", .counter,
    "Trace rounds that got a Destination Unreachable, by ICMP code (1 host, 3 port, 13 prohibited…): once per round and code, however many probes drew one.",
    labels: targetLabels + ["code"])

  public static let pathMTU = MetricFamily(
    "netprobe_path_mtu_bytes", .gauge,
    "Path MTU of a target with dont_fragment: the next-hop MTU of \"fragmentation needed\" / \"packet too big\", or the kernel's cached path MTU when it is smaller than the probes; absent while no MTU limits them.",
    labels: targetLabels)

  public static let pathSendErrors = MetricFamily(
    "netprobe_path_send_errors_total", .counter,
    "Trace probes the kernel refused to send, by errno (EMSGSIZE, EHOSTUNREACH, EAGAIN…); each also counts as a lost probe at its hop. An ICMP error about an earlier probe pending on a datagram socket is read, not counted.",
    labels: targetLabels + ["reason"])

  public static let pathUnexpected = MetricFamily(
    "netprobe_path_packets_unexpected_total", .counter,
    "ICMP answers to UDP trace probes ignored because they name no probe in flight, by reason (malformed, bad_nonce, unknown_probe, ambiguous, corrupt); present once a target traces with protocol udp.",
    labels: ["family", "reason"])

  public static let pathRounds = MetricFamily(
    "netprobe_path_rounds_total", .counter, "Trace rounds completed.", labels: targetLabels)

  public static let pathRoundDuration = MetricFamily(
    "netprobe_path_round_duration_seconds", .gauge, "Duration of the last trace round.", labels: targetLabels)

  // MARK: Push

  public static let pushes = MetricFamily(
    "netprobe_pushes_total", .counter,
    "Pushes to the Pushgateway, by result (success, failure); a push counts once, whatever its retries.",
    labels: ["result"])

  public static let pushRetries = MetricFamily(
    "netprobe_push_retries_total", .counter,
    "Push attempts repeated after a failed one.")

  public static let pushLastSuccessTimestamp = MetricFamily(
    "netprobe_push_last_success_timestamp_seconds", .gauge,
    "Unix time of the last successful push.")

  public static let pushDuration = MetricFamily(
    "netprobe_push_duration_seconds", .gauge,
    "Duration of the last push, retries included.")

  public static let pushInterval = MetricFamily(
    "netprobe_push_interval_seconds", .gauge,
    "The configured time between pushes (push.interval), for alerts on the age of the last success.")

  // MARK: Process (as the Go client names them)

  public static let processCPU = MetricFamily(
    "process_cpu_seconds_total", .counter, "Total user and system CPU time spent in seconds.")
  public static let processResidentMemory = MetricFamily(
    "process_resident_memory_bytes", .gauge, "Resident memory size in bytes.")
  public static let processVirtualMemory = MetricFamily(
    "process_virtual_memory_bytes", .gauge, "Virtual memory size in bytes.")
  public static let processOpenFDs = MetricFamily(
    "process_open_fds", .gauge, "Number of open file descriptors.")
  public static let processMaxFDs = MetricFamily(
    "process_max_fds", .gauge, "Maximum number of open file descriptors.")
  public static let processStartTime = MetricFamily(
    "process_start_time_seconds", .gauge, "Start time of the process since unix epoch in seconds.")

  /// Every family, for the README check and for `--check-config`'s summary.
  public static let all: [MetricFamily] =
    [
      buildInfo, configLastReloadSuccessful, configLastReloadSuccessTimestamp, configReloads, configItems,
      scrapeCollectorDuration, httpRequests, httpOpenConnections, httpRejectedConnections, httpEvictedConnections,
      httpAcceptErrors, httpAuthFailures, httpTLSHandshakeFailures,
      pingTargetInfo, pingSent, pingReceived, pingDuplicates, pingLate, pingSendErrors, pingRTT, pingWindowProbes,
      pingLossRatio, pingRTTMin, pingRTTMean, pingRTTMax, pingRTTStandardDeviation, pingJitter, pingJitterRFC3550,
      pingReplyTTL, pingDNSFailures, pingUnexpected, pingSocketErrors,
      pathHops, pathReached, pathChanges, pathLastChange, pathHash, pathHopInfo, pathHopRTT, pathHopLoss,
      pathUnreachable, pathMTU, pathSendErrors, pathUnexpected, pathRounds, pathRoundDuration,
    ] + multicastFamilies + beaconFamilies + querierFamilies + targetFileFamilies + [
      pushes, pushRetries, pushLastSuccessTimestamp, pushDuration, pushInterval,
      processCPU, processResidentMemory, processVirtualMemory, processOpenFDs, processMaxFDs, processStartTime,
    ]

  /// Every label name the exporter itself sets on a series that also carries a target's
  /// custom labels (the families keyed by `targetLabels`, and `le` of their histograms).
  /// A custom label of the same name would print the name twice in one series, which
  /// Prometheus rejects for the whole scrape, so the config refuses it.
  public static let targetOwnedLabels = ownedLabels(keyedBy: targetLabels)

  /// The same for a multicast group's custom labels (the families keyed by `streamLabels`).
  public static let groupOwnedLabels = ownedLabels(keyedBy: streamLabels)

  private static func ownedLabels(keyedBy key: [String]) -> [String] {
    var names = Set<String>()
    for family in all where family.labels.starts(with: key) {
      names.formUnion(family.labels)
      if family.type == .histogram { names.insert("le") }
    }
    return names.sorted()
  }
}
