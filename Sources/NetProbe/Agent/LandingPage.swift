/// The HTML page at `/`: what this exporter is, its version, where its metrics are, and
/// what it probes and joins — the first thing an operator opens when a dashboard is empty.
struct LandingPage {
  let telemetryPath: String
  let config: NetProbeConfig
  let source: ConfigSource
  let reloadErrors: ConfigErrors?

  /// Rows shown per table; a config with 10,000 targets still gives a small page.
  static let rowLimit = 200

  var html: String {
    var page = """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"><title>netprobe_exporter</title>
      <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}.bad{color:#b00}</style>
      </head><body>
      <h1>netprobe_exporter</h1>
      <p>ICMP loss, latency and path, and multicast reception health, for Prometheus.
      Version \(escape(BuildInfo.version)) (revision \(escape(BuildInfo.revision))).</p>
      <ul><li><a href="\(escape(telemetryPath))">Metrics</a></li><li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li></ul>
      <p>Configuration: \(escape(source.description)).</p>

      """
    if let reloadErrors {
      page += "<p class=\"bad\">The last reload failed; the previous configuration keeps running:</p><pre>\(escape(reloadErrors.description))</pre>\n"
    }
    page += table(
      "Targets", ["name", "host", "interval", "timeout", "family", "socket", "trace"],
      config.targets.map { target in
        let o = target.options
        return [target.name, target.host, ConfigValues.formatDuration(o.interval), ConfigValues.formatDuration(o.timeout),
                o.family.rawValue, o.socket.rawValue, o.trace.enabled ? "every \(ConfigValues.formatDuration(o.trace.interval))" : "off"]
      })
    page += table(
      "Multicast groups", ["name", "group", "sources", "port", "interface", "format"],
      config.multicast.map { group in
        [group.name, group.group.description, group.sources.isEmpty ? "any" : group.sources.map(\.description).joined(separator: " "),
         String(group.port), group.interface, group.format.rawValue]
      })
    page += table(
      "Beacons sent", ["name", "group", "port", "interface", "rate"],
      config.beacons.map { [$0.name, $0.group.description, String($0.port), $0.interface, "\(Exposition.formatValue($0.rate))/s"] })
    if let watch = config.querierWatch {
      let protocols = watch.protocols.map(\.rawValue).joined(separator: ", ")
      page += "<h2>Querier watch</h2><p>\(escape(protocols)) on \(escape(watch.interfaces.joined(separator: ", ")))</p>\n"
    }
    if let push = config.push {
      page += "<h2>Push</h2><p>to \(escape(push.url)) as job \(escape(push.job)) every \(ConfigValues.formatDuration(push.interval))</p>\n"
    }
    return page + "</body></html>\n"
  }

  private func table(_ title: String, _ columns: [String], _ rows: [[String]]) -> String {
    guard !rows.isEmpty else { return "" }
    var html = "<h2>\(escape(title)) (\(rows.count))</h2>\n<table><tr>"
    html += columns.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
    for row in rows.prefix(LandingPage.rowLimit) {
      html += "<tr>" + row.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n"
    }
    html += "</table>\n"
    if rows.count > LandingPage.rowLimit { html += "<p>… and \(rows.count - LandingPage.rowLimit) more.</p>\n" }
    return html
  }

  private func escape(_ text: String) -> String {
    var escaped = ""
    for character in text {
      switch character {
      case "&": escaped += "&amp;"
      case "<": escaped += "&lt;"
      case ">": escaped += "&gt;"
      case "\"": escaped += "&quot;"
      case "'": escaped += "&#39;"
      default: escaped.append(character)
      }
    }
    return escaped
  }
}
