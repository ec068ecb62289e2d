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
    "HTTP connections answered 503 and closed because the connection limit was reached.")

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
  public static let all: [MetricFamily] = [
    buildInfo, configLastReloadSuccessful, configLastReloadSuccessTimestamp, configReloads, configItems,
    httpRequests, httpOpenConnections, httpRejectedConnections,
    pushes, pushRetries, pushLastSuccessTimestamp, pushDuration,
    processCPU, processResidentMemory, processVirtualMemory, processOpenFDs, processMaxFDs, processStartTime,
  ]
}
