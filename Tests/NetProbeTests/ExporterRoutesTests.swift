import Foundation
import Logging
import Testing
@testable import NetProbe

/// A configuration file in a temporary directory, removed at the end.
final class TemporaryConfig {
  let directory: URL
  let file: URL

  init(_ text: String) throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("netprobe-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    file = directory.appendingPathComponent("netprobe.yml")
    try write(text)
  }

  func write(_ text: String) throws { try text.write(to: file, atomically: true, encoding: .utf8) }

  deinit { try? FileManager.default.removeItem(at: directory) }
}

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

/// An agent on a temporary file, the routes over it, and a registry with its metrics.
struct RoutesFixture {
  let config: TemporaryConfig
  let agent: Agent
  let registry = MetricsRegistry()
  let routes: ExporterRoutes

  init(_ text: String = "targets:\n  - {name: lo, host: 127.0.0.1}\n") throws {
    config = try TemporaryConfig(text)
    let loaded = try ConfigLoader.load(.file(config.file.path)).get()
    agent = Agent(source: .file(config.file.path), config: loaded, logger: quietLogger, now: { 1_700_000_000 })
    registry.register("agent", agent)
    routes = ExporterRoutes(telemetryPath: "/metrics", registry: registry, agent: agent)
  }

  func request(_ method: String, _ path: String) -> HTTPResponse {
    routes.respond(to: HTTPRequest(method: method, path: path, headers: [("host", "x")]))
  }

  func metricsText() -> String { String(decoding: request("GET", "/metrics").allBytes, as: UTF8.self) }
}

@Suite struct ExporterRoutesTests {
  @Test func servesMetricsWithSelfMetrics() throws {
    let fixture = try RoutesFixture()
    let response = fixture.request("GET", "/metrics")
    #expect(response.status == .ok)
    #expect(response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
    let text = fixture.metricsText()
    #expect(text.contains("netprobe_build_info{version=\"\(BuildInfo.version)\",revision=\"\(BuildInfo.revision)\"} 1\n"))
    #expect(text.contains("netprobe_config_last_reload_successful 1\n"))
    #expect(text.contains("netprobe_config_last_reload_success_timestamp_seconds 1700000000\n"))
    #expect(text.contains("netprobe_config_items{kind=\"targets\"} 1\n"))
  }

  @Test func routesAndMethods() throws {
    let fixture = try RoutesFixture()
    #expect(fixture.request("HEAD", "/metrics").status == .ok)
    #expect(fixture.request("GET", "/-/healthy").status == .ok)
    #expect(fixture.request("GET", "/-/ready").status == .serviceUnavailable)
    fixture.agent.markReady()
    #expect(fixture.request("GET", "/-/ready").status == .ok)
    #expect(fixture.request("GET", "/nope").status == .notFound)
    let post = fixture.request("POST", "/metrics")
    #expect(post.status == .methodNotAllowed && post.header("Allow") == "GET, HEAD")
    let getReload = fixture.request("GET", "/-/reload")
    #expect(getReload.status == .methodNotAllowed && getReload.header("Allow") == "POST, PUT")
    #expect(fixture.routes.handlerLabel(for: HTTPRequest(method: "GET", path: "/x/y")) == "other")
  }

  @Test func landingPageShowsWhatIsProbedEscaped() throws {
    let fixture = try RoutesFixture("targets:\n  - {name: '<b>lo</b>', host: 127.0.0.1}\n")
    let page = String(decoding: fixture.request("GET", "/").body, as: UTF8.self)
    #expect(page.contains("<a href=\"/metrics\">Metrics</a>"))
    // No ping engine in this fixture: the configured target is listed as having no data.
    #expect(
      page.contains(
        "<td class=\"st\">NODATA<br><small>no probe decided yet</small></td><td><a href=\"/targets/%3Cb%3Elo%3C%2Fb%3E\">&lt;b&gt;lo&lt;/b&gt;</a></td><td>127.0.0.1</td>"
      ))
    #expect(!page.contains("<b>lo</b>"))
  }

  @Test func badReloadKeepsTheRunningConfigAndReportsIt() throws {
    let fixture = try RoutesFixture()
    try fixture.config.write("targets:\n  - {name: lo, host: 127.0.0.1, intervall: 1s}\n")
    let response = fixture.request("POST", "/-/reload")
    #expect(response.status == .internalServerError)
    #expect(
      String(decoding: response.body, as: UTF8.self).contains(
        "netprobe.yml:2:33: unknown key 'intervall' in targets[0] (did you mean 'interval'?)"))
    #expect(fixture.agent.config.targets.map(\.name) == ["lo"])
    let text = fixture.metricsText()
    #expect(text.contains("netprobe_config_last_reload_successful 0\n"))
    #expect(text.contains("netprobe_config_reloads_total{result=\"failure\"} 1\n"))
    #expect(String(decoding: fixture.request("GET", "/").body, as: UTF8.self).contains("The last reload failed"))

    try fixture.config.write("targets:\n  - {name: lo2, host: 127.0.0.2}\n  - {name: lo3, host: 127.0.0.3}\n")
    #expect(fixture.request("POST", "/-/reload").status == .ok)
    #expect(fixture.agent.config.targets.map(\.name) == ["lo2", "lo3"])
    let after = fixture.metricsText()
    #expect(after.contains("netprobe_config_last_reload_successful 1\n"))
    #expect(after.contains("netprobe_config_reloads_total{result=\"success\"} 1\n"))
    #expect(after.contains("netprobe_config_items{kind=\"targets\"} 2\n"))
  }

  @Test func subscribersGetOnlyValidConfigs() throws {
    final class Recorder: ConfigSubscriber, @unchecked Sendable {
      let lock = NSLock()
      var names: [[String]] = []
      func apply(_ config: NetProbeConfig) { lock.withLock { names.append(config.targets.map(\.name)) } }
      func stop() {}
    }
    let fixture = try RoutesFixture()
    let recorder = Recorder()
    fixture.agent.subscribe(recorder)
    try fixture.config.write("targets: [\n")
    fixture.agent.reload()
    try fixture.config.write("targets:\n  - {name: b, host: 127.0.0.2}\n")
    fixture.agent.reload()
    #expect(recorder.names == [["lo"], ["b"]])
  }
}
