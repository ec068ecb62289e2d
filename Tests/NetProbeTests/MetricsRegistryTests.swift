import Testing
@testable import NetProbe

/// Each scrape says how long each collector took, so a slow engine shows itself.
@Suite struct MetricsRegistryTests {
  struct Fixed: MetricsCollector {
    func collect(into exposition: inout Exposition) {
      exposition.add(Catalogue.configItems, LabelSet([("kind", "targets")]), 3)
    }
  }

  @Test func everyCollectorHasItsDuration() {
    let registry = MetricsRegistry()
    registry.register("ping", Fixed())
    registry.register("querier", Fixed())
    let lines = String(decoding: registry.render(), as: UTF8.self).split(separator: "\n")
    let durations = lines.filter { $0.hasPrefix("netprobe_scrape_collector_duration_seconds{") }
    #expect(durations.count == 2)
    #expect(durations.contains { $0.hasPrefix(#"netprobe_scrape_collector_duration_seconds{collector="ping"} "#) })
    #expect(durations.contains { $0.hasPrefix(#"netprobe_scrape_collector_duration_seconds{collector="querier"} "#) })
    #expect(lines.contains("# TYPE netprobe_scrape_collector_duration_seconds gauge"))
  }
}
