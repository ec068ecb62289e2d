import Foundation
import Testing
@testable import NetProbe

private let epoch: Int64 = 1_700_000_000

@Suite struct GroupGraphTests {
  /// 100 seconds at 10 packets/s, with seconds 40–42 silent and 30 numbers lost in them.
  static func lossyHistory() -> [ReceptionHistory.Second?] {
    (0..<100).map { index in
      if (40...42).contains(index) { return ReceptionHistory.Second(packets: 0, lost: 10, gaps: index == 40 ? 1 : 0) }
      return ReceptionHistory.Second(packets: 10, longestSilence: index == 43 ? 3.1 : 0.1)
    }
  }

  @Test func geometryOfAKnownHistory() {
    let graph = GroupGraph(history: Self.lossyHistory(), end: epoch, expectedRate: 10, slotCount: 100, size: .large)
    // Received plus lost peaks at 10/s; a round top above it (and above 10 × 1.05).
    #expect(graph.axisTop == 15 && graph.ticks == [0, 5, 10, 15])
    #expect(graph.slots.count == 100 && graph.slots.allSatisfy { $0.seconds == 1 && $0.known == 1 })
    #expect(graph.receivedBars.count == 97)
    #expect(graph.lossSlots == [40, 41, 42])
    let size = SmokeGraph.Size.large
    let bar = graph.receivedBars[0]
    #expect(abs(bar.y - (size.top + size.plotHeight * (1 - 10.0 / 15))) < 1e-9)
    #expect(abs(bar.y + bar.height - (size.top + size.plotHeight)) < 1e-9)
    // The lost bars stand from 0 (nothing received) to the 10 lost per second.
    #expect(graph.lostBars.count == 3 && abs(graph.lostBars[0].y - bar.y) < 1e-9)
    #expect(graph.startSecond(ofSlot: 40) == epoch - 59)
  }

  @Test func theSVGMarksLossInColourAndShapeInItsSlot() {
    let graph = GroupGraph(history: Self.lossyHistory(), end: epoch, expectedRate: 10, slotCount: 100, size: .large)
    let svg = graph.svg(title: "feed")
    #expect(svg.components(separatedBy: "<path class=\"loss\"").count - 1 == 3)
    #expect(svg.contains("<path class=\"loss\" data-slot=\"40\" data-start=\"\(epoch - 59)\" data-lost=\"10\" fill=\"#d00000\""))
    #expect(svg.contains("<title>−1m to −59s: 10 lost in 1 gap, 0/s received</title>"))
    #expect(svg.contains("<title>−58s to −57s: 10 lost in 0 gaps, 0/s received</title>"))
    #expect(svg.contains("class=\"expected\""))
    #expect(svg.contains(">packets/s</text>") && svg.contains(">now</text>") && svg.contains(">−1m40s</text>"))
    #expect(svg.contains(">15</text>"))
  }

  @Test func slotsOfSeveralSecondsAverageTheRate() {
    let graph = GroupGraph(history: Self.lossyHistory(), end: epoch, expectedRate: nil, slotCount: 20, size: .small)
    #expect(graph.slots.count == 20 && graph.slots.allSatisfy { $0.seconds == 5 })
    // Slot 8 holds seconds 40–44: two of five received, ten a second.
    #expect(graph.slots[8].rate == 4 && graph.slots[8].lost == 30 && graph.slots[8].gaps == 1)
    #expect(graph.slots[8].longestSilence == Double(Float(3.1)))
    #expect(graph.lossSlots == [8])
    let svg = graph.svg(title: "feed")
    #expect(!svg.contains("class=\"expected\"") && !svg.contains("<text"))
    #expect(!svg.contains("<title>−"))
  }

  @Test func secondsBeforeTheJoinAreShadedUnknown() {
    var history = [ReceptionHistory.Second?](repeating: nil, count: 60)
    history += [ReceptionHistory.Second?](repeating: ReceptionHistory.Second(packets: 5), count: 40)
    let graph = GroupGraph(history: history, end: epoch, expectedRate: nil, slotCount: 100, size: .large)
    #expect(graph.unknownRects.count == 60 && graph.receivedBars.count == 40 && graph.lossSlots.isEmpty)
    #expect(graph.axisTop == 6)
  }

  @Test func anEmptyHistoryDrawsAnEmptyPlot() {
    let graph = GroupGraph(history: [], end: 0, expectedRate: 25, slotCount: 100, size: .large)
    let svg = graph.svg(title: "nothing yet")
    #expect(graph.slots.isEmpty && graph.span == ReceptionHistory.capacity)
    #expect(!svg.contains("class=\"received\"") && !svg.contains("class=\"loss\"") && !svg.contains("class=\"unknown\""))
    #expect(svg.contains("class=\"expected\"") && svg.hasSuffix("</svg>"))
    #expect(graph.axisTop == 30)
  }

  @Test func theTitleIsEscaped() {
    let svg = GroupGraph(history: Self.lossyHistory(), end: epoch, expectedRate: nil, slotCount: 20, size: .small)
      .svg(title: "<script>alert(1)</script>")
    #expect(!svg.contains("<script"))
    #expect(svg.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"))
  }

  // MARK: The pages

  static func group(_ name: String) -> GroupStatus {
    let config = MulticastGroupConfig(
      name: name, group: IPAddress("239.1.2.3")!, port: 5000, interface: "lo", expectedRate: 10,
      labels: [Label("feed", "<b>x</b>")], location: SourceLocation(line: 1, column: 1))
    var group = GroupStatus(unreceived: config)
    group.history = lossyHistory()
    group.historyEnd = epoch
    return group
  }

  @Test func lossInTheHistoryWarns() {
    var group = Self.group("feed")
    group.joined = true
    group.receiving = true
    group.rate = 10
    group.assess()
    #expect(group.health == .warning && group.problems == ["30 lost in the last 100 s"])
    group.history = [nil, ReceptionHistory.Second(packets: 10)]
    group.assess()
    #expect(group.health == .ok && group.problems.isEmpty)
  }

  @Test func theGroupPageAndTableShowTheGraphAndEscapeNames() {
    let evil = "<script>alert(1)</script>"
    var snapshot = StatusSnapshot(time: Double(epoch), configSource: "test.yml")
    snapshot.groups = [Self.group(evil)]
    let page = StatusPage(snapshot: snapshot, telemetryPath: "/metrics")
    let detail = page.groupPage(snapshot.groups[0])
    let overview = page.overview(page: 1)
    for html in [detail, overview] {
      #expect(!html.contains("<script") && !html.contains("<b>x"))
      #expect(html.contains("class=\"group-graph\""))
      #expect(html.contains("<path class=\"loss\""))
    }
    #expect(detail.contains("<figure id=\"group-graph\">"))
    #expect(detail.contains("<tr><th>last 100 s</th><td>30 lost in 1 gap, longest silence 3.1 s</td></tr>"))
    #expect(overview.contains("<a href=\"/groups/%3Cscript%3Ealert%281%29%3C%2Fscript%3E\">&lt;script&gt;"))
  }

  @Test func theJSONCarriesTheHistory() throws {
    var snapshot = StatusSnapshot(time: Double(epoch), configSource: "test.yml")
    snapshot.groups = [Self.group("feed")]
    let root = try #require(try JSONSerialization.jsonObject(with: Data(StatusJSON.render(snapshot).utf8)) as? [String: Any])
    let group = try #require((root["multicast_groups"] as? [[String: Any]])?.first)
    #expect(group["url"] as? String == "/groups/feed")
    let history = try #require(group["history"] as? [String: Any])
    #expect(history["end_timestamp_seconds"] as? Int == Int(epoch) && history["step_seconds"] as? Int == 1)
    let lost = try #require(history["lost"] as? [Int])
    #expect(lost.count == 100 && lost[40...42] == [10, 10, 10] && lost.reduce(0, +) == 30)
    #expect((history["packets"] as? [Int])?[43] == 10 && (history["gaps"] as? [Int])?[40] == 1)
    #expect((history["longest_silence_seconds"] as? [Double])?[43] == 3.1)
  }

  @Test func groupRoutesServeAndRefuseUnknownNames() throws {
    let fixture = try RoutesFixture(
      "multicast:\n  - {name: 'tv <1>', group: 239.1.1.1, port: 5000, interface: lo}\n")
    let response = fixture.request("GET", "/groups/tv%20%3C1%3E")
    #expect(response.status == .ok)
    #expect(response.header("Content-Security-Policy")?.hasPrefix("default-src 'none';") == true)
    let body = String(decoding: response.body, as: UTF8.self)
    #expect(body.contains("<h2 id=\"group\" class=\"critical\">tv &lt;1&gt; <span"))
    #expect(body.contains("<figure id=\"group-graph\">"))
    let missing = fixture.request("GET", "/groups/nope")
    #expect(missing.status == .notFound)
    #expect(String(decoding: missing.body, as: UTF8.self).contains("No multicast group named <b>nope</b>"))
    #expect(fixture.request("GET", "/groups/%zz").status == .notFound)
    #expect(fixture.routes.handlerLabel(for: HTTPRequest(method: "GET", path: "/groups/x")) == "group")
    let api = String(decoding: fixture.request("GET", "/api/v1/status").body, as: UTF8.self)
    #expect(api.contains("\"history\":null"))
  }
}
