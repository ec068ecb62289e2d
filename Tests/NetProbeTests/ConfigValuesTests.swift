import Testing
@testable import NetProbe

@Suite struct ConfigValuesTests {
  @Test(arguments: [
    ("250ms", Duration.milliseconds(250)), ("1s", .seconds(1)), ("5m", .seconds(300)), ("1m30s", .seconds(90)),
    ("1.5s", .milliseconds(1500)), ("2h", .seconds(7200)), ("1d", .seconds(86_400)), ("100us", .microseconds(100)),
    ("100µs", .microseconds(100)), ("10ns", .nanoseconds(10)), ("0s", .zero),
  ])
  func parsesDurations(text: String, expected: Duration) {
    #expect(ConfigValues.parseDuration(text) == expected)
  }

  @Test(arguments: ["", "1", "60", "1 sec", "1sec", "s", "1.s", ".5s", "1s1m", "1m1m", "-1s", "1S", "1e3s", "1.2.3s", "99999999999d"])
  func rejectsBadDurations(text: String) {
    #expect(ConfigValues.parseDuration(text) == nil)
  }

  @Test func formatsDurationsBack() {
    for text in ["250ms", "1s", "1m30s", "2h", "1d"] {
      #expect(ConfigValues.formatDuration(ConfigValues.parseDuration(text)!) == text)
    }
    #expect(ConfigValues.formatDuration(.milliseconds(60_001)) == "1m1ms")
    #expect(ConfigValues.formatDuration(.zero) == "0s")
  }

  @Test func hostNames() {
    for good in ["example.com", "a", "core-1.dc.example.", "_srv.example", "xn--bcher-kva.example"] {
      #expect(ConfigValues.isHostName(good), "\(good)")
    }
    for bad in [
      "", "-a.example", "a-.example", "a..b", "exa mple.com", "1.2.3.4", "1.2.3", String(repeating: "a", count: 64) + ".com",
      "bücher.example",
    ] {
      #expect(!ConfigValues.isHostName(bad), "\(bad)")
    }
  }

  @Test func labelAndInterfaceNames() {
    #expect(ConfigValues.isLabelName("site"))
    #expect(ConfigValues.isLabelName("_x9"))
    #expect(!ConfigValues.isLabelName("9x"))
    #expect(!ConfigValues.isLabelName("__meta"))
    #expect(!ConfigValues.isLabelName("a-b"))
    #expect(!ConfigValues.isLabelName(""))
    #expect(ConfigValues.isInterfaceName("eth0"))
    #expect(ConfigValues.isInterfaceName("veth-agent.100"))
    #expect(!ConfigValues.isInterfaceName("a-very-long-interface"))
    #expect(!ConfigValues.isInterfaceName("eth0:1"))
    #expect(!ConfigValues.isInterfaceName("a b"))
  }

  @Test func suggestsCloseKeys() {
    #expect(ConfigValues.suggestion(for: "intervall", among: ["interval", "timeout"]) == "interval")
    #expect(ConfigValues.suggestion(for: "tiemout", among: ["interval", "timeout"]) == "timeout")
    #expect(ConfigValues.suggestion(for: "colour", among: ["interval", "timeout"]) == nil)
  }
}
