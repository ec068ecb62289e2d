/// The one-screen summary `--check-config` prints: what would be probed, joined, sent and
/// pushed, without opening a socket.
public struct ConfigSummary {
  public let config: NetProbeConfig
  public let source: ConfigSource
  /// Rows listed per section before "… and N more".
  public var rowLimit = 10

  public init(config: NetProbeConfig, source: ConfigSource) {
    self.config = config
    self.source = source
  }

  public var text: String {
    var lines = ["\(source): configuration OK"]
    let targets = config.targets
    let tracing = targets.filter(\.options.trace.enabled).count
    lines.append("")
    lines.append("ICMP targets: \(targets.count)" + (tracing > 0 ? " (\(tracing) with path tracing)" : ""))
    for target in targets.prefix(rowLimit) {
      let o = target.options
      var line =
        "  \(target.name): \(target.host) every \(ConfigValues.formatDuration(o.interval)), timeout \(ConfigValues.formatDuration(o.timeout)), \(o.payloadSize) B, family \(o.family.rawValue), socket \(o.socket.rawValue)"
      if let interface = o.interface { line += ", via \(interface)" }
      if let source = o.source { line += ", from \(source)" }
      if o.trace.enabled { line += ", trace every \(ConfigValues.formatDuration(o.trace.interval)) up to \(o.trace.maxHops) hops" }
      lines.append(line)
    }
    if targets.count > rowLimit { lines.append("  … and \(targets.count - rowLimit) more") }
    lines.append("")
    lines.append("Multicast groups: \(config.multicast.count)")
    for group in config.multicast.prefix(rowLimit) {
      let kind = group.sources.isEmpty ? "any-source" : "source-specific from \(group.sources.map(\.description).joined(separator: ", "))"
      var line = "  \(group.name): join \(group.group) port \(group.port) on \(group.interface), \(kind), format \(group.format.rawValue)"
      if let rate = group.expectedRate { line += ", expecting \(Exposition.formatValue(rate)) packets/s" }
      lines.append(line)
    }
    if config.multicast.count > rowLimit { lines.append("  … and \(config.multicast.count - rowLimit) more") }
    if !config.beacons.isEmpty {
      lines.append("")
      lines.append("Beacons sent: \(config.beacons.count)")
      for beacon in config.beacons.prefix(rowLimit) {
        lines.append(
          "  \(beacon.name): \(Exposition.formatValue(beacon.rate)) packets/s to \(beacon.group) port \(beacon.port) on \(beacon.interface), TTL \(beacon.ttl), \(beacon.size) B"
        )
      }
    }
    if let watch = config.querierWatch {
      lines.append("")
      let protocols = watch.protocols.map(\.rawValue).joined(separator: " and ")
      let interval =
        watch.queryInterval.map { ConfigValues.formatDuration($0) } ?? "\(ConfigValues.formatDuration(.seconds(125))) (the RFC default)"
      lines.append("Querier watch (\(protocols)) on: \(watch.interfaces.joined(separator: ", "))")
      lines.append(
        "  query interval \(interval) unless announced, robustness \(watch.robustness), response \(ConfigValues.formatDuration(watch.queryResponseInterval))"
      )
    }
    if let push = config.push {
      lines.append("")
      lines.append(
        "Push: to \(push.url) as job '\(push.job)' every \(ConfigValues.formatDuration(push.interval)) (timeout \(ConfigValues.formatDuration(push.timeout)))"
      )
    }
    return lines.joined(separator: "\n") + "\n"
  }
}
