import Foundation
import Testing
@testable import NetProbe

/// A window of `count` probes of `rtt` seconds, the first `lost` of them lost.
private func window(_ count: Int, rtt: Float, lost: Int = 0) -> [Float] {
  (0..<count).map { $0 < lost ? .nan : rtt }
}

private func target(
  _ name: String, _ outcomes: [Float], labels: [Label] = [],
  path: PathStatus? = nil, now: Double = 1_700_000_000
) -> TargetStatus {
  TargetStatus(
    name: name, host: "198.18.0.1", address: IPAddress("198.18.0.1"), labels: labels, interval: 1, outcomes: outcomes,
    path: path, now: now)
}

private func snapshot(_ targets: [TargetStatus]) -> StatusSnapshot {
  var snapshot = StatusSnapshot(time: 1_700_000_000, configSource: "test.yml")
  snapshot.targets = targets
  snapshot.sortWorstFirst()
  return snapshot
}

@Suite struct StatusPageTests {
  // MARK: Escaping

  @Test func htmlEscapesEveryMarkupCharacter() {
    #expect(HTML.escape("<script>alert('x') & \"y\"</script>") == "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;")
    #expect(HTML.escape("plain-name_1") == "plain-name_1")
  }

  @Test func targetNamesRoundTripThroughTheirURL() {
    for name in ["lo", "<script>", "a b/c?d#e%f", "grüße", "a\"b'c"] {
      let segment = HTML.pathSegment(name)
      #expect(segment.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "<") })
      #expect(HTML.decodePathSegment(Substring(segment)) == name)
    }
    #expect(HTML.decodePathSegment("%zz") == nil)
    #expect(HTML.decodePathSegment("%C3") == nil)
  }

  @Test func scriptInANameAndALabelIsShownAsText() {
    let evil = "<script>alert(1)</script>"
    let page = StatusPage(
      snapshot: snapshot([target(evil, window(20, rtt: 0.001, lost: 10), labels: [Label("site", "<img src=x onerror=alert(2)>")])]),
      telemetryPath: "/metrics")
    for html in [page.overview(page: 1), page.targetPage(page.snapshot.targets[0])] {
      #expect(!html.contains("<script"))
      #expect(!html.contains("<img"))
      #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    }
    #expect(page.overview(page: 1).contains("site=&lt;img src=x onerror=alert(2)&gt;"))
    let json = StatusJSON.render(page.snapshot)
    #expect(!json.contains("<script"))
  }

  @Test func theStatusAPIEscapesAngleBracketsAndTheOtherJSONDoesNot() {
    var api = ""
    api.appendJSONString("<b>\u{7F}", escapingAngleBrackets: true)
    #expect(api == #""\u003cb>\u007f""#)
    var log = ""
    log.appendJSONString("<b>")
    #expect(log == #""<b>""#)
  }

  @Test func figuresReadShort() {
    #expect(StatusFormat.percent(0.125) == "12.5%" && StatusFormat.percent(0) == "0%")
    #expect(StatusFormat.milliseconds(0.000042) == "0.042 ms" && StatusFormat.milliseconds(0.18749) == "187 ms")
    #expect(StatusFormat.age(42) == "42s" && StatusFormat.age(310) == "5m10s" && StatusFormat.age(2 * 86400 + 3 * 3600) == "2d3h")
    #expect(StatusFormat.interval(0.05) == "50 ms" && StatusFormat.interval(1) == "1s")
    #expect(StatusFormat.tick(0.015) == "15 ms" && StatusFormat.tick(0.000025) == "0.025 ms")
  }

  // MARK: Sorting and health

  @Test func worstFirst() {
    let sorted = snapshot([
      target("a-fine", window(20, rtt: 0.001)),
      target("b-some-loss", window(20, rtt: 0.001, lost: 1)),
      target("c-heavy-loss", window(20, rtt: 0.001, lost: 10)),
      target("d-no-data", []),
      target("e-fine-slower", window(20, rtt: 0.005)),
      target("f-all-lost", window(20, rtt: 0, lost: 20)),
    ]).targets
    #expect(sorted.map(\.name) == ["f-all-lost", "c-heavy-loss", "b-some-loss", "d-no-data", "e-fine-slower", "a-fine"])
    #expect(sorted.map(\.health) == [.critical, .critical, .warning, .noData, .ok, .ok])
    #expect(sorted[1].problems == ["loss 50%"])
    #expect(sorted[2].problems == ["loss 5%"])
  }

  @Test func figuresOfAWindow() {
    let status = target("t", [0.004, .nan, 0.001, 0.003, 0.002])
    // |0.001 − 0.004| + |0.003 − 0.001| + |0.002 − 0.003| over 3, as ProbeWindow's jitter.
    var window = ProbeWindow(capacity: 5)
    for rtt in [0.004, nil, 0.001, 0.003, 0.002] { window.record(rtt) }
    #expect(abs((status.jitter ?? 0) - (window.summary.jitter ?? 1)) < 1e-9)
    #expect(status.lossRatio == 0.2)
    #expect(status.rttMedian == Double(Float(0.0025)) || abs((status.rttMedian ?? 0) - 0.0025) < 1e-9)
    #expect(abs((status.rttMin ?? 0) - 0.001) < 1e-9 && abs((status.rttMax ?? 0) - 0.004) < 1e-9)
  }

  @Test func medianBySelectionMatchesSorting() {
    var generator = SystemRandomNumberGenerator()
    for count in [1, 2, 3, 4, 5, 10, 99, 100] {
      for _ in 0..<50 {
        // Few distinct values too, so ties go through the partition.
        let values = (0..<count).map { _ in Float(Int.random(in: 0..<(count < 10 ? 3 : 1000), using: &generator)) / 1000 }
        var copy = values
        #expect(TargetStatus.median(unsorted: &copy) == TargetStatus.median(sorted: values.sorted()), "\(values)")
      }
    }
    var empty: [Float] = []
    #expect(TargetStatus.median(unsorted: &empty) == nil)
  }

  @Test func aRecentPathChangeWarns() {
    let now = 1_700_000_000.0
    let path = PathStatus(
      hops: [.init(responders: ["198.18.1.1"], lossRatio: 0, rttMean: 0.001)], changes: 2,
      lastChange: now - 60, reached: true, rounds: 9)
    let changed = target("t", window(10, rtt: 0.001), path: path, now: now)
    #expect(changed.health == .warning && changed.problems == ["path changed 1m ago"])
    var old = path
    old.lastChange = now - 3600
    #expect(target("t", window(10, rtt: 0.001), path: old, now: now).health == .ok)
  }

  // MARK: Smoke graph geometry

  @Test func smokeGeometryOfAKnownWindow() {
    // Slot 0: 1…5 ms, none lost. Slot 1: 10 ms four times, one of five lost (20 %).
    let outcomes: [Float] = [0.001, 0.002, 0.003, 0.004, 0.005, 0.010, .nan, 0.010, 0.010, 0.010]
    let graph = SmokeGraph(outcomes: outcomes, interval: 1, slotCount: 2, size: .large)
    #expect(graph.slots.map(\.count) == [5, 5])
    #expect(graph.slots.map(\.lost) == [0, 1])
    // 10 ms × 1.05 over 4 steps → 5 ms steps, top 15 ms.
    #expect(abs(graph.axisTop - 0.015) < 1e-12)
    #expect(graph.ticks.count == 4)
    let size = SmokeGraph.Size.large
    func y(_ ms: Double) -> Double { size.top + size.plotHeight * (1 - ms / 15) }
    let medians = graph.medianSegments
    #expect(medians.count == 2)
    #expect(abs(medians[0].y - y(3)) < 1e-3 && medians[0].colour == "#1fb800")
    #expect(abs(medians[1].y - y(10)) < 1e-3 && medians[1].colour == "#7e00ff")
    #expect(medians[0].x0 == size.left && abs(medians[1].x1 - (size.width - size.right)) < 1e-9)
    let bands = graph.bandRects
    // min–max of slot 0: 1 ms to 5 ms; 25–75 %: 2 ms to 4 ms.
    #expect(abs(bands[0][0].y - y(5)) < 1e-3 && abs(bands[0][0].height - (y(1) - y(5))) < 1e-3)
    #expect(abs(bands[2][0].y - y(4)) < 1e-3 && abs(bands[2][0].height - (y(2) - y(4))) < 1e-3)
    // Equal RTTs: a hairline band, not nothing.
    #expect(bands[0][1].height == 0.5)
    #expect(graph.lostRects.isEmpty)
    let svg = graph.svg(title: "t")
    #expect(svg.contains("stroke=\"#7e00ff\""))
    #expect(svg.contains("M382 71.3H706"))
    #expect(svg.contains(">15 ms</text>") && svg.contains(">now</text>") && svg.contains(">−10s</text>"))
  }

  @Test func aFullyLostSlotIsShadedAndHasNoMedian() {
    let graph = SmokeGraph(outcomes: window(5, rtt: 0.002) + window(5, rtt: 0, lost: 5), interval: 1, slotCount: 2, size: .small)
    #expect(graph.medianSegments.count == 1)
    #expect(graph.lostRects.count == 1)
    #expect(graph.lostRects[0].height == SmokeGraph.Size.small.plotHeight)
    #expect(graph.svg(title: "t").contains("class=\"lost\""))
  }

  @Test func lossColoursFollowSmokePing() {
    #expect(SmokeGraph.lossColour(0) == "#1fb800")
    #expect(SmokeGraph.lossColour(0.05) == "#00b8ff")
    #expect(SmokeGraph.lossColour(0.3) == "#dd00ff")
    #expect(SmokeGraph.lossColour(1) == "#ff0000")
  }

  @Test func anEmptyWindowDrawsAnEmptyPlot() {
    let graph = SmokeGraph(outcomes: [], interval: 1, slotCount: 20, size: .large)
    #expect(graph.slots.isEmpty && graph.medianSegments.isEmpty)
    #expect(graph.svg(title: "t").hasSuffix("</svg>"))
  }

  // MARK: Paging

  @Test func pagesOfTwoHundredWorstFirst() {
    let targets = (0..<450).map { index in target(String(format: "t%03d", index), window(20, rtt: 0.001, lost: index == 321 ? 4 : 0)) }
    let page = StatusPage(snapshot: snapshot(targets), telemetryPath: "/metrics")
    func rows(_ html: String) -> Int { html.components(separatedBy: "<tr class=").count - 1 }
    let first = page.overview(page: 1)
    #expect(rows(first) == 200)
    #expect(first.contains("Page 1 of 3: rows 1–200 of 450"))
    #expect(first.contains("<a href=\"/?page=2\" rel=\"next\">"))
    // The lossy one leads the first page.
    let firstRow = first.range(of: "<tr class=")!
    #expect(first[firstRow.lowerBound...].hasPrefix("<tr class=\"critical\""))
    #expect(first[firstRow.lowerBound...].contains("t321"))
    let last = page.overview(page: 3)
    #expect(rows(last) == 50)
    #expect(last.contains("Page 3 of 3: rows 401–450 of 450") && !last.contains("rel=\"next\""))
    #expect(page.overview(page: 99) == last)
    #expect(StatusRoutes.pageNumber("page=2&x=1") == 2 && StatusRoutes.pageNumber("page=-1") == 1 && StatusRoutes.pageNumber("") == 1)
  }

  /// Not an assertion on time (the machine is shared): prints what a page for 10,000 targets
  /// costs, from the windows to the HTML, for the record.
  @Test func tenThousandTargetsRenderOnePage() {
    let windows = (0..<10_000).map { index in
      (0..<100).map { probe -> Float in probe % 97 == index % 97 ? .nan : Float(0.001 + Double(probe % 7) * 0.0001) }
    }
    let start = ContinuousClock.now
    let targets = windows.indices.map { index in target("target-\(index)", windows[index]) }
    let built = ContinuousClock.now
    let page = StatusPage(snapshot: snapshot(targets), telemetryPath: "/metrics")
    let html = page.overview(page: 1)
    let rendered = ContinuousClock.now
    #expect(html.components(separatedBy: "<tr class=").count - 1 == 200)
    print("status page, 10,000 targets × 100 probes: figures \(built - start), sort + page \(rendered - built), \(html.utf8.count) bytes")
  }

  // MARK: JSON

  static let documentedFields: Set<String> = [
    "generated_timestamp_seconds", "config_source", "last_reload_error", "targets", "multicast_groups", "queriers", "push",
    "name", "host", "address", "labels", "health", "problems", "url", "interval_seconds", "window_probes", "loss_ratio",
    "rtt_median_seconds", "rtt_min_seconds", "rtt_max_seconds", "jitter_seconds", "dns_error", "path",
    "hops", "reached", "changes", "last_change_timestamp_seconds", "rounds", "hop_details", "hop", "responders", "rtt_mean_seconds",
    "group", "sources", "port", "interface", "joined", "receiving", "rate_packets_per_second", "expected_rate_packets_per_second",
    "packets", "lost", "last_packet_age_seconds", "querier_present",
    "history", "end_timestamp_seconds", "step_seconds", "gaps", "longest_silence_seconds",
    "protocol", "present", "querier", "version", "last_query_age_seconds",
    "successes", "failures", "last_success_timestamp_seconds", "last_succeeded", "last_error",
  ]

  static func fullSnapshot() -> StatusSnapshot {
    let path = PathStatus(
      hops: [.init(responders: ["198.18.1.1"], lossRatio: 0.5, rttMean: 0.002), .init(responders: [], lossRatio: nil, rttMean: nil)],
      changes: 1, lastChange: 1_699_999_000, reached: false, rounds: 12)
    var snapshot = snapshot([
      target("lossy", window(10, rtt: 0.002, lost: 3), labels: [Label("site", "x\"y")], path: path),
      target("fine", window(10, rtt: 0.001)),
    ])
    snapshot.reloadError = "netprobe.yml:2:3: unknown key"
    let config = MulticastGroupConfig(
      name: "feed", group: IPAddress("239.1.2.3")!, port: 5000, interface: "lo", expectedRate: 10,
      location: SourceLocation(line: 1, column: 1))
    var group = GroupStatus(unreceived: config)
    group.history = [nil, ReceptionHistory.Second(packets: 7, lost: 3, gaps: 1, longestSilence: 0.5)]
    group.historyEnd = 1_699_999_999
    snapshot.groups = [group]
    snapshot.queriers = [QuerierStatus(interface: "lo", querierProtocol: .igmp, present: false)]
    snapshot.linkQueriers()
    snapshot.push = PushStatus(
      configured: true, interval: 15, successes: 3, failures: 1, lastSuccess: 1_699_999_990,
      lastSucceeded: false, lastError: "HTTP 500: boom")
    return snapshot
  }

  private static func keys(_ value: Any, into keys: inout Set<String>, skipping: Set<String> = ["labels"]) {
    if let object = value as? [String: Any] {
      for (key, inner) in object {
        keys.insert(key)
        if !skipping.contains(key) { Self.keys(inner, into: &keys) }
      }
    } else if let array = value as? [Any] {
      for inner in array { Self.keys(inner, into: &keys) }
    }
  }

  @Test func jsonHasTheDocumentedFieldsAndValues() throws {
    let text = StatusJSON.render(Self.fullSnapshot())
    let root = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    var found = Set<String>()
    Self.keys(root, into: &found)
    #expect(found == Self.documentedFields)
    let targets = try #require(root["targets"] as? [[String: Any]])
    #expect(targets.map { $0["name"] as? String } == ["lossy", "fine"])
    #expect(targets[0]["health"] as? String == "critical")
    #expect(targets[0]["loss_ratio"] as? Double == 0.3)
    #expect(targets[0]["url"] as? String == "/targets/lossy")
    #expect((targets[0]["labels"] as? [String: String]) == ["site": "x\"y"])
    let path = try #require(targets[0]["path"] as? [String: Any])
    #expect(path["hops"] as? Int == 2 && path["reached"] as? Bool == false)
    #expect(targets[1]["path"] is NSNull && targets[1]["dns_error"] is NSNull)
    let group = try #require((root["multicast_groups"] as? [[String: Any]])?.first)
    #expect(group["receiving"] as? Bool == false && group["querier_present"] as? Bool == false && group["lost"] is NSNull)
    #expect(group["health"] as? String == "critical")
    let push = try #require(root["push"] as? [String: Any])
    #expect(push["last_error"] as? String == "HTTP 500: boom" && push["health"] as? String == "critical")
    #expect(root["last_reload_error"] as? String == "netprobe.yml:2:3: unknown key")
  }

  @Test func theReadmeDocumentsEveryJSONField() throws {
    let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("README.md")
    let text = try String(contentsOf: readme, encoding: .utf8)
    #expect(text.contains("/api/v1/status"))
    for field in Self.documentedFields.sorted() {
      #expect(text.contains("`\(field)`"), "README does not document \(field)")
    }
  }

  // MARK: Routes

  @Test func routesServeThePagesWithAStrictPolicy() throws {
    let fixture = try RoutesFixture("targets:\n  - {name: 'a b<', host: 127.0.0.1}\n")
    for path in ["/", "/api/v1/status", "/targets/a%20b%3C"] {
      let response = fixture.request("GET", path)
      #expect(response.status == .ok, "\(path)")
      #expect(response.header("Content-Security-Policy")?.hasPrefix("default-src 'none';") == true)
      #expect(response.header("X-Content-Type-Options") == "nosniff")
    }
    #expect(fixture.request("GET", "/api/v1/status").header("Content-Type") == "application/json")
    #expect(
      String(decoding: fixture.request("GET", "/targets/a%20b%3C").body, as: UTF8.self).contains(
        "<h2 id=\"target\" class=\"no_data\">a b&lt; <span"))
    #expect(fixture.request("GET", "/targets/nope").status == .notFound)
    #expect(fixture.request("GET", "/targets/%zz").status == .notFound)
    let post = fixture.request("POST", "/")
    #expect(post.status == .methodNotAllowed && post.header("Allow") == "GET, HEAD")
    #expect(fixture.routes.handlerLabel(for: HTTPRequest(method: "GET", path: "/")) == "status")
    #expect(fixture.routes.handlerLabel(for: HTTPRequest(method: "GET", path: "/targets/x")) == "target")
    #expect(fixture.routes.handlerLabel(for: HTTPRequest(method: "GET", path: "/api/v1/status")) == "api_status")
  }
}
