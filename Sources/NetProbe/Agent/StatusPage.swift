@preconcurrency import Glibc

/// The live status pages: `/` (every target, group, querier and the push, worst first,
/// paged), `/targets/NAME` (one target's smoke graph and path), `/groups/NAME` (one multicast
/// group's reception graph) and `/api/v1/status` (the same as JSON for scripts).
///
/// Ordinary routes of the exporter's one HTTP server, so whatever guards `/metrics` (bind
/// address, TLS, basic auth) guards them too. Every response forbids any outside source
/// with a Content-Security-Policy: the pages are self-contained (inline CSS and SVG, no
/// script) and refresh themselves with `<meta http-equiv="refresh">`.
struct StatusRoutes {
  let telemetryPath: String
  let registry: MetricsRegistry
  let agent: Agent
  let now: @Sendable () -> Double

  /// Rows of the targets table per page: a page for 10,000 targets stays small and quick.
  static let pageSize = 200
  /// Seconds between the page's own reloads.
  static let refreshSeconds = 10
  static let targetPrefix = "/targets/"
  static let groupPrefix = "/groups/"
  static let apiPath = "/api/v1/status"

  /// Nothing from outside: no script at all, styles only inline, no images but the inline
  /// SVG (which needs no source), no forms, no framing by other sites.
  static let contentSecurityPolicy =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

  /// The `handler` label of the HTTP metrics for the paths served here; nil for others.
  static func label(for path: String) -> String? {
    if path == "/" { return "status" }
    if path == apiPath { return "api_status" }
    if path.hasPrefix(targetPrefix) { return "target" }
    if path.hasPrefix(groupPrefix) { return "group" }
    return nil
  }

  /// The response for a status path, or nil when the path is not one of these.
  func respond(to request: HTTPRequest) -> HTTPResponse? {
    guard let label = Self.label(for: request.path), request.path != telemetryPath else { return nil }
    guard request.method == "GET" || request.method == "HEAD" else {
      var response = HTTPResponse.text(.methodNotAllowed, "method not allowed; use GET or HEAD\n")
      response.headers.append(("Allow", "GET, HEAD"))
      return response
    }
    let snapshot = StatusSnapshot.collect(registry: registry, agent: agent, now: now())
    switch label {
    case "api_status":
      return Self.response(.ok, "application/json", StatusJSON.render(snapshot))
    case "target":
      let name = HTML.decodePathSegment(request.path.dropFirst(Self.targetPrefix.count))
      guard let name, let target = snapshot.targets.first(where: { $0.name == name }) else {
        return Self.response(
          .notFound, "text/html; charset=utf-8",
          StatusPage.notFound(name ?? String(request.path.dropFirst(Self.targetPrefix.count))))
      }
      return Self.response(.ok, "text/html; charset=utf-8", StatusPage(snapshot: snapshot, telemetryPath: telemetryPath).targetPage(target))
    case "group":
      let name = HTML.decodePathSegment(request.path.dropFirst(Self.groupPrefix.count))
      guard let name, let group = snapshot.groups.first(where: { $0.name == name }) else {
        return Self.response(
          .notFound, "text/html; charset=utf-8",
          StatusPage.notFound(name ?? String(request.path.dropFirst(Self.groupPrefix.count)), kind: "multicast group"))
      }
      return Self.response(.ok, "text/html; charset=utf-8", StatusPage(snapshot: snapshot, telemetryPath: telemetryPath).groupPage(group))
    default:
      let page = Self.pageNumber(request.query)
      return Self.response(
        .ok, "text/html; charset=utf-8", StatusPage(snapshot: snapshot, telemetryPath: telemetryPath).overview(page: page))
    }
  }

  /// `page=N` from the query (1-based); 1 when absent or not a number.
  static func pageNumber(_ query: String) -> Int {
    for pair in query.split(separator: "&") where pair.hasPrefix("page=") {
      if let number = Int(pair.dropFirst(5)), number >= 1 { return number }
    }
    return 1
  }

  static func response(_ status: HTTPStatus, _ type: String, _ body: String) -> HTTPResponse {
    HTTPResponse(
      status,
      headers: [
        ("Content-Type", type), ("Content-Security-Policy", contentSecurityPolicy), ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"),
      ], body: Array(body.utf8))
  }
}

/// The HTML of the status pages, from a snapshot. Pure, so tests render known states.
struct StatusPage {
  let snapshot: StatusSnapshot
  let telemetryPath: String

  static let style = """
    body{font-family:sans-serif;margin:1em 2em;color:#222}h1{margin:.2em 0}nav a{margin-right:1em}\
    table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:middle}\
    th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\
    tr.critical td{background:#fde0e0}tr.warning td{background:#fff3cd}tr.no_data td{background:#eef}\
    .st{font-weight:bold;white-space:nowrap}tr.critical .st,.bad{color:#a00}tr.warning .st{color:#8a5a00}tr.ok .st{color:#16700a}\
    .meta,.pager,small{color:#555}.swatch{display:inline-block;width:1.4em;height:.35em;vertical-align:middle;margin:0 .3em 0 .8em}\
    pre{background:#fde0e0;padding:.5em}svg.smoke,svg.group-graph{display:block}
    """

  private func head(_ title: String) -> String {
    """
    <!DOCTYPE html>
    <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="\(StatusRoutes.refreshSeconds)">
    <meta name="viewport" content="width=device-width,initial-scale=1"><title>\(HTML.escape(title))</title>
    <style>\(Self.style)</style></head><body>
    <h1>netprobe_exporter</h1>
    <nav><a href="/">Status</a><a href="\(HTML.escape(telemetryPath))">Metrics</a><a href="\(StatusRoutes.apiPath)">JSON</a><a href="/-/healthy">Health</a><a href="/-/ready">Readiness</a></nav>
    <p class="meta">Version \(HTML.escape(BuildInfo.version)) (revision \(HTML.escape(BuildInfo.revision))) · configuration \(HTML.escape(snapshot.configSource)) · \
    as of \(Self.utc(snapshot.time)), refreshed every \(StatusRoutes.refreshSeconds) s</p>

    """
  }

  private var reloadBanner: String {
    guard let error = snapshot.reloadError else { return "" }
    return
      "<p class=\"bad\" id=\"reload-error\"><b>CRIT</b> The last reload failed; the previous configuration keeps running:</p><pre>\(HTML.escape(error))</pre>\n"
  }

  /// `/`: the page `page` (1-based) of the targets, then groups, queriers and push.
  func overview(page requested: Int) -> String {
    let targets = snapshot.targets
    let pages = max(1, (targets.count + StatusRoutes.pageSize - 1) / StatusRoutes.pageSize)
    let page = min(max(requested, 1), pages)
    var html = head("netprobe_exporter status")
    html += reloadBanner
    html += "<h2 id=\"targets\">Targets (\(targets.count)\(Self.counts(targets.map(\.health))))</h2>\n"
    if targets.isEmpty {
      html += "<p>No ping targets configured.</p>\n"
    } else {
      html +=
        "<table id=\"targets-table\"><thead><tr><th>status</th><th>target</th><th>address</th><th>loss</th><th>median</th><th>min</th><th>max</th><th>jitter</th><th>hops</th><th>path changed</th><th>smoke</th></tr></thead><tbody>\n"
      let start = (page - 1) * StatusRoutes.pageSize
      for target in targets[start..<min(start + StatusRoutes.pageSize, targets.count)] { html += targetRow(target) }
      html += "</tbody></table>\n"
      html += pager(page: page, pages: pages, start: start, total: targets.count)
      html += Self.legend
    }
    html += groupsTable()
    html += queriersTable()
    html += pushSection()
    return html + "</body></html>\n"
  }

  private static func counts(_ healths: [Health]) -> String {
    let parts = [Health.critical, .warning, .noData].compactMap { level -> String? in
      let count = healths.count { $0 == level }
      return count == 0 ? nil : "\(count) \(level.word)"
    }
    return parts.isEmpty ? "" : ": " + parts.joined(separator: ", ")
  }

  private func statusCell(_ health: Health, _ problems: [String]) -> String {
    let detail = problems.isEmpty ? "" : "<br><small>\(HTML.escape(problems.joined(separator: "; ")))</small>"
    return "<td class=\"st\">\(health.word)\(detail)</td>"
  }

  private func targetRow(_ target: TargetStatus) -> String {
    let link = StatusRoutes.targetPrefix + HTML.pathSegment(target.name)
    var row = "<tr class=\"\(target.health.jsonValue)\" data-health=\"\(target.health.jsonValue)\">"
    row += statusCell(target.health, target.problems)
    row += "<td><a href=\"\(HTML.escape(link))\">\(HTML.escape(target.name))</a>\(labelText(target.labels))</td>"
    row += "<td>\(HTML.escape(target.address ?? target.host))</td>"
    row += "<td class=\"n\">\(target.lossRatio.map(StatusFormat.percent) ?? "–")</td>"
    for value in [target.rttMedian, target.rttMin, target.rttMax, target.jitter] {
      row += "<td class=\"n\">\(value.map(StatusFormat.milliseconds) ?? "–")</td>"
    }
    row += "<td class=\"n\">\(target.path.map { hopsText($0) } ?? "–")</td>"
    row += "<td>\(target.path.map { changeText($0) } ?? "–")</td>"
    let outcomes = target.outcomes
    let graph = SmokeGraph(outcomes: outcomes, interval: target.interval, slotCount: Self.slotCount(outcomes.count, most: 12), size: .small)
    row += "<td>\(graph.svg(title: "\(target.name): smoke of the last \(target.probes) probes"))</td>"
    return row + "</tr>\n"
  }

  /// Columns for a window of `probes`: five probes or more per column where the window
  /// allows, so each column's bands show a spread rather than one RTT.
  static func slotCount(_ probes: Int, most: Int) -> Int {
    max(1, min(most, probes / 5))
  }

  private func labelText(_ labels: [Label]) -> String {
    guard !labels.isEmpty else { return "" }
    return "<br><small>" + labels.map { HTML.escape("\($0.name)=\($0.value)") }.joined(separator: " ") + "</small>"
  }

  private func hopsText(_ path: PathStatus) -> String {
    path.hops.isEmpty ? "?" : String(path.hops.count) + (path.reached ? "" : " (not reached)")
  }

  private func changeText(_ path: PathStatus) -> String {
    guard let change = path.lastChange else { return path.changes == 0 ? "never" : "\(path.changes)×" }
    return "\(StatusFormat.age(snapshot.time - change)) ago (\(path.changes)×)"
  }

  private func pager(page: Int, pages: Int, start: Int, total: Int) -> String {
    var html =
      "<p class=\"pager\">Page \(page) of \(pages): rows \(start + 1)–\(min(start + StatusRoutes.pageSize, total)) of \(total), worst first."
    if page > 1 { html += " <a href=\"/?page=\(page - 1)\" rel=\"prev\">‹ previous</a>" }
    if page < pages { html += " <a href=\"/?page=\(page + 1)\" rel=\"next\">next ›</a>" }
    return html + "</p>\n"
  }

  /// What the median's colours mean (SmokePing's palette) and what the grey bands are.
  static let legend: String = {
    var html =
      "<p class=\"legend\"><small>Smoke: grey bands are the RTT spread per time slot (min–max, 10–90 %, 25–75 %); the line is the median, coloured by the slot's loss:"
    for entry in SmokeGraph.lossPalette {
      html += "<span class=\"swatch\" style=\"background:\(entry.colour)\"></span>\(HTML.escape(entry.label))"
    }
    return html + "; pale red: every probe lost.</small></p>\n"
  }()

  private func groupsTable() -> String {
    let groups = snapshot.groups
    guard !groups.isEmpty else { return "" }
    var html = "<h2 id=\"groups\">Multicast groups (\(groups.count)\(Self.counts(groups.map(\.health))))</h2>\n"
    html +=
      "<table id=\"groups-table\"><thead><tr><th>status</th><th>group</th><th>address</th><th>receiving</th><th>rate / expected</th><th>lost</th><th>last packet</th><th>querier</th><th>packets/s</th></tr></thead><tbody>\n"
    for group in groups {
      html +=
        "<tr class=\"\(group.health.jsonValue)\" data-health=\"\(group.health.jsonValue)\">" + statusCell(group.health, group.problems)
      let link = StatusRoutes.groupPrefix + HTML.pathSegment(group.name)
      html += "<td><a href=\"\(HTML.escape(link))\">\(HTML.escape(group.name))</a>\(labelText(group.labels))</td>"
      let sources = group.sources.isEmpty ? "" : " from " + group.sources.joined(separator: " ")
      html += "<td>\(HTML.escape("\(group.group):\(group.port)\(sources) on \(group.interface)"))</td>"
      html += "<td>\(group.receiving ? "yes" : "NO")\(group.joined ? "" : " (not joined)")</td>"
      let rate = group.rate.map { StatusFormat.number($0) + "/s" } ?? "–"
      html += "<td class=\"n\">\(rate) / \(group.expectedRate.map { StatusFormat.number($0) + "/s" } ?? "–")</td>"
      html += "<td class=\"n\">\(group.sequenced ? "\(group.lost) (\(group.lossRatio.map(StatusFormat.percent) ?? "0%"))" : "–")</td>"
      html += "<td>\(group.lastPacketAge.map { StatusFormat.age($0) + " ago" } ?? "never")</td>"
      html += "<td>\(group.querierPresent.map { $0 ? "present" : "ABSENT" } ?? "not watched")</td>"
      let graph = GroupGraph(
        history: group.history, end: group.historyEnd, expectedRate: group.expectedRate, slotCount: 20, size: .small)
      html += "<td>\(graph.svg(title: "\(group.name): packets/s and loss of the last \(graph.span) s"))</td></tr>\n"
    }
    return html + "</tbody></table>\n" + Self.groupLegend
  }

  private func queriersTable() -> String {
    guard !snapshot.queriers.isEmpty else { return "" }
    var html =
      "<h2 id=\"queriers\">Queriers</h2>\n<table id=\"queriers-table\"><thead><tr><th>status</th><th>interface</th><th>protocol</th><th>querier</th><th>last general query</th></tr></thead><tbody>\n"
    for querier in snapshot.queriers {
      let health: Health = querier.present ? .ok : .critical
      html +=
        "<tr class=\"\(health.jsonValue)\" data-health=\"\(health.jsonValue)\">" + statusCell(health, querier.present ? [] : ["no querier"])
      html += "<td>\(HTML.escape(querier.interface))</td><td>\(querier.querierProtocol.rawValue)</td>"
      html += "<td>\(HTML.escape(querier.querier.map { "\($0) (v\(querier.version ?? 0))" } ?? "none heard"))</td>"
      html += "<td>\(querier.lastQueryAge.map { StatusFormat.age($0) + " ago" } ?? "never")</td></tr>\n"
    }
    return html + "</tbody></table>\n"
  }

  private func pushSection() -> String {
    guard let push = snapshot.push else { return "" }
    let health = push.health
    var html = "<h2 id=\"push\">Push</h2>\n<table id=\"push-table\"><tr class=\"\(health.jsonValue)\" data-health=\"\(health.jsonValue)\">"
    html += statusCell(health, push.lastError.map { ["last push failed: \($0)"] } ?? [])
    html +=
      "<td>every \(push.interval.map { StatusFormat.age($0) } ?? "–")</td><td>\(push.successes) succeeded, \(push.failures) failed</td>"
    html += "<td>last success: \(push.lastSuccess.map { StatusFormat.age(snapshot.time - $0) + " ago" } ?? "never")</td></tr></table>\n"
    return html
  }

  // MARK: One target

  /// `/targets/NAME`: the figures, the large smoke graph, and the path's hops with their loss.
  func targetPage(_ target: TargetStatus) -> String {
    var html = head("\(target.name) · netprobe_exporter")
    html += reloadBanner
    html +=
      "<h2 id=\"target\" class=\"\(target.health.jsonValue)\">\(HTML.escape(target.name)) <span class=\"st\">\(target.health.word)</span></h2>\n"
    if !target.problems.isEmpty { html += "<p class=\"problems\">\(HTML.escape(target.problems.joined(separator: "; ")))</p>\n" }
    html += "<table id=\"figures\"><tbody>\n"
    var rows: [(String, String)] = [
      ("host", target.host), ("address", target.address ?? "not resolved"),
      ("window", "\(target.probes) probes, one every \(StatusFormat.interval(target.interval))"),
      ("loss", target.lossRatio.map(StatusFormat.percent) ?? "–"),
      (
        "RTT median / min / max",
        [target.rttMedian, target.rttMin, target.rttMax].map { $0.map(StatusFormat.milliseconds) ?? "–" }.joined(separator: " / ")
      ),
      ("jitter", target.jitter.map(StatusFormat.milliseconds) ?? "–"),
    ]
    if let dnsError = target.dnsError { rows.append(("DNS", dnsError)) }
    for label in target.labels { rows.append(("label \(label.name)", label.value)) }
    for (name, value) in rows { html += "<tr><th>\(HTML.escape(name))</th><td>\(HTML.escape(value))</td></tr>\n" }
    html += "</tbody></table>\n"
    let outcomes = target.outcomes
    let graph = SmokeGraph(outcomes: outcomes, interval: target.interval, slotCount: Self.slotCount(outcomes.count, most: 60), size: .large)
    html += "<figure id=\"smoke\">\(graph.svg(title: "\(target.name): RTT smoke and loss of the last \(target.probes) probes"))</figure>\n"
    html += Self.legend
    html += pathSection(target.path)
    return html + "</body></html>\n"
  }

  private func pathSection(_ path: PathStatus?) -> String {
    guard let path else { return "<h3>Path</h3><p>Not traced (<code>trace</code> is off for this target).</p>\n" }
    var html =
      "<h3>Path</h3>\n<p>\(path.hops.count) hops\(path.reached ? "" : ", destination not reached in the last round"); \(path.changes) changes"
    if let change = path.lastChange { html += ", the last \(StatusFormat.age(snapshot.time - change)) ago" }
    html += "; \(path.rounds) rounds.</p>\n"
    guard !path.hops.isEmpty else { return html }
    html +=
      "<table id=\"hops\"><thead><tr><th>status</th><th>hop</th><th>responders</th><th>loss</th><th>mean RTT</th></tr></thead><tbody>\n"
    for (index, hop) in path.hops.enumerated() {
      let loss = hop.lossRatio ?? 0
      let health: Health = loss >= StatusThresholds.criticalLoss ? .critical : loss > 0 ? .warning : .ok
      html +=
        "<tr class=\"\(health.jsonValue)\" data-health=\"\(health.jsonValue)\"><td class=\"st\">\(health.word)</td><td class=\"n\">\(index + 1)</td>"
      html += "<td>\(HTML.escape(hop.responders.isEmpty ? "*" : hop.responders.joined(separator: " ")))</td>"
      html +=
        "<td class=\"n\">\(hop.lossRatio.map(StatusFormat.percent) ?? "–")</td><td class=\"n\">\(hop.rttMean.map(StatusFormat.milliseconds) ?? "–")</td></tr>\n"
    }
    return html + "</tbody></table>\n"
  }

  // MARK: One group

  /// What the group graph's marks mean.
  static let groupLegend =
    "<p class=\"legend\"><small>Packets/s: blue bars are the packets received per second in each time slot; "
    + "<span class=\"swatch\" style=\"background:\(GroupGraph.lostColour)\"></span>red bars stacked on them and ▼ above are "
    + "sequence numbers lost there; <span class=\"swatch\" style=\"background:\(GroupGraph.expectedColour)\"></span>dashed: "
    + "<code>expected_rate</code>; grey: before the join.</small></p>\n"

  /// `/groups/NAME`: the group's figures and its reception graph, a second a column.
  func groupPage(_ group: GroupStatus) -> String {
    var html = head("\(group.name) · netprobe_exporter")
    html += reloadBanner
    html +=
      "<h2 id=\"group\" class=\"\(group.health.jsonValue)\">\(HTML.escape(group.name)) <span class=\"st\">\(group.health.word)</span></h2>\n"
    if !group.problems.isEmpty { html += "<p class=\"problems\">\(HTML.escape(group.problems.joined(separator: "; ")))</p>\n" }
    let known = group.history.compactMap { $0 }
    let lost = known.reduce(UInt64(0)) { $0 + UInt64($1.lost) }
    let gaps = known.reduce(UInt64(0)) { $0 + UInt64($1.gaps) }
    let silence = known.map { Double($0.longestSilence) }.max() ?? 0
    var rows: [(String, String)] = [
      ("group", "\(group.group):\(group.port)"),
      ("sources", group.sources.isEmpty ? "any (ASM)" : group.sources.joined(separator: " ")),
      ("interface", group.interface),
      ("joined / receiving", "\(group.joined ? "yes" : "no") / \(group.receiving ? "yes" : "no")"),
      (
        "rate / expected",
        "\(group.rate.map { StatusFormat.number($0) + "/s" } ?? "–") / \(group.expectedRate.map { StatusFormat.number($0) + "/s" } ?? "–")"
      ),
      ("packets since the join", "\(group.packets)"),
      (
        "lost since the join",
        group.sequenced ? "\(group.lost) (\(group.lossRatio.map(StatusFormat.percent) ?? "0%"))" : "– (no sequence numbers)"
      ),
      (
        "last \(ReceptionHistory.capacity) s",
        known.isEmpty
          ? "not joined yet"
          : "\(lost) lost in \(gaps) \(gaps == 1 ? "gap" : "gaps"), longest silence \(GroupGraph.silence(silence))"
      ),
      ("last packet", group.lastPacketAge.map { StatusFormat.age($0) + " ago" } ?? "never"),
      ("querier", group.querierPresent.map { $0 ? "present" : "ABSENT" } ?? "not watched"),
    ]
    if let error = group.joinError { rows.append(("join error", error)) }
    for label in group.labels { rows.append(("label \(label.name)", label.value)) }
    html += "<table id=\"figures\"><tbody>\n"
    for (name, value) in rows { html += "<tr><th>\(HTML.escape(name))</th><td>\(HTML.escape(value))</td></tr>\n" }
    html += "</tbody></table>\n"
    let graph = GroupGraph(
      history: group.history, end: group.historyEnd, expectedRate: group.expectedRate, slotCount: ReceptionHistory.capacity,
      size: .large)
    html += "<figure id=\"group-graph\">\(graph.svg(title: "\(group.name): packets/s and loss of the last \(graph.span) s"))</figure>\n"
    html += Self.groupLegend
    return html + "</body></html>\n"
  }

  static func notFound(_ name: String, kind: String = "target") -> String {
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>not found</title></head><body><p>No \(kind) named <b>\(HTML.escape(name))</b>. <a href=\"/\">The status page</a></p></body></html>\n"
  }

  /// Unix seconds as "2025-01-31 12:00:00 UTC".
  static func utc(_ time: Double) -> String {
    var seconds = time_t(time.rounded(.down))
    var parts = tm()
    guard gmtime_r(&seconds, &parts) != nil else { return "\(time)" }
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return
      "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
  }
}
