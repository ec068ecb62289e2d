import Foundation
import Testing
@testable import NetProbe

@Suite struct ConfigSchemaTests {
  @Test func fullExampleReadsEveryKey() throws {
    let text = try String(contentsOf: packageRoot.appendingPathComponent("config/examples/full.yml"), encoding: .utf8)
    let config = try loadConfig(text).get()
    #expect(config.defaults.window == 100)
    #expect(config.defaults.labels == [Label("region", "eu-west")])
    #expect(config.ping.rttBuckets.count == 9)
    #expect(config.ping.identifierRotation == .seconds(3600))
    #expect(config.ping.nativeHistograms?.schema == 4 && config.ping.nativeHistograms?.maxBuckets == 120)
    #expect(config.targets.map(\.name) == ["core-1", "core-2", "dns-name", "jumbo-df"])

    let core1 = config.targets[0]
    #expect(core1.options.trace.enabled)
    #expect(core1.options.trace.interval == .seconds(60))
    #expect(core1.options.labels == [Label("region", "eu-west"), Label("role", "core"), Label("site", "fra-1")])
    #expect(core1.location == SourceLocation(line: 38, column: 5))
    #expect(core1.options.series == SeriesChoice())

    let core2 = config.targets[1]
    #expect(core2.options.interval == .milliseconds(500))
    #expect(core2.options.tos == 0xB8)
    #expect(core2.options.trace.enabled && core2.options.trace.maxHops == 16 && core2.options.trace.interval == .seconds(120))
    #expect(core2.address == IPAddress("2001:db8::2"))

    let dns = config.targets[2]
    #expect(dns.address == nil && dns.options.family == .ip6 && dns.options.socket == .dgram)
    #expect(!dns.options.trace.enabled)

    let jumbo = config.targets[3]
    #expect(jumbo.options.payloadSize == 8972 && jumbo.options.dontFragment && jumbo.options.ttl == 32)
    #expect(jumbo.options.source == IPAddress("198.18.0.2") && jumbo.options.interface == "eth1")
    #expect(!jumbo.options.series.classicBuckets && !jumbo.options.series.windowGauges && jumbo.options.series.hopSeries)

    #expect(config.multicast.count == 5)
    let ssm = config.multicast[1]
    #expect(ssm.sources == [IPAddress("198.18.1.1")!, IPAddress("198.18.1.2")!])
    #expect(ssm.format == .rtp && ssm.clockRate == 90_000)
    #expect(config.multicast[2].sequenceField == SequenceField(offset: 0, width: 8, endianness: .little))
    #expect(config.multicast[2].receiveBuffer == 32 << 20 && ssm.receiveBuffer == MulticastGroupConfig.defaultReceiveBuffer)
    #expect(config.multicast[3].joinLatencyTest?.leaveWait == .seconds(3))
    #expect(config.multicast[3].clockSynchronized)
    #expect(config.multicast[4].group == IPAddress("ff3e::8000:1"))
    #expect(config.multicast[0].restartGap == .seconds(1) && ssm.restartGap == .milliseconds(500))

    #expect(config.beacons.first?.streamID == 7 && config.beacons.first?.ttl == 4)
    #expect(config.querierWatch?.interfaces == ["eth1", "eth2"])
    #expect(config.querierWatch?.queryInterval == .seconds(125))
    #expect(config.querierWatch?.protocols == [.igmp, .mld])

    let push = try #require(config.push)
    #expect(push.instance == "host-a" && push.grouping == [Label("site", "fra-1")])
    #expect(push.basicAuth?.passwordFile == "/etc/netprobe/pushgateway.password")
    #expect(push.tls.keyFile == "/etc/netprobe/client-key.pem" && push.gzip && push.deleteOnShutdown)
  }

  @Test func emptyFileIsAnEmptyConfig() throws {
    let config = try loadConfig("# nothing yet\n").get()
    #expect(config == NetProbeConfig())
  }

  @Test func targetNameDefaultsToHost() throws {
    let config = try loadConfig("targets:\n  - host: 198.18.0.1\n").get()
    #expect(config.targets.first?.name == "198.18.0.1")
  }

  @Test func unknownKeySuggestsTheNearestOne() {
    #expect(
      errorLines("targets:\n  - host: 198.18.0.1\n  - host: 198.18.0.2\n  - host: 198.18.0.3\n    intervall: 2s\n")
        == ["test.yml:5:5: unknown key 'intervall' in targets[2] (did you mean 'interval'?)"])
  }

  @Test func badDurationNamesTheExpectedForm() {
    #expect(
      errorLines("defaults:\n  interval: 1 sec\n")
        == ["test.yml:2:13: expected a duration such as 500ms, 1s or 2m, got '1 sec'"])
    #expect(
      errorLines("defaults:\n  timeout: 60\n")
        == ["test.yml:2:12: expected a duration such as 500ms, 1s or 2m, got '60'"])
  }

  @Test func duplicateTargetNamePointsAtTheFirst() {
    let text = "targets:\n  - name: core-1\n    host: 198.18.0.1\n  - name: core-1\n    host: 198.18.0.2\n"
    #expect(errorLines(text) == ["test.yml:4:11: duplicate target name 'core-1' (first at 2:11)"])
  }

  @Test func everyProblemIsReportedInFileOrder() {
    let text = """
      targets:
        - host: 198.18.0.1
          ttl: 300
          family: ipv4
        - host: not a host
        - name: x
      multicast:
        - group: 198.18.0.1
          port: 5000
          interface: eth0
        - group: 239.1.1.1
          port: 5000

      """
    #expect(
      errorLines(text) == [
        "test.yml:3:10: 300 out of range: expected an integer from 1 to 255",
        "test.yml:4:13: expected one of auto, ip4, ip6, got 'ipv4' (did you mean 'ip4'?)",
        "test.yml:5:11: 'not a host' is neither an IP address nor a valid DNS name",
        "test.yml:6:5: targets[2] needs a 'host': a DNS name or an IP address",
        "test.yml:8:12: 198.18.0.1 is not a multicast address (224.0.0.0/4 or ff00::/8)",
        "test.yml:11:5: multicast[1] needs 'interface'",
      ])
  }

  @Test func yamlBooleansAndNullsMustBeQuotedAsText() {
    #expect(
      errorLines("targets:\n  - host: 198.18.0.1\n    labels: {country: NO}\n")
        == [#"test.yml:3:23: 'NO' is read as a boolean by YAML; quote it ("NO") if you mean text"#])
    let config = try? loadConfig("targets:\n  - host: 198.18.0.1\n    labels: {country: 'NO', rack: 12}\n").get()
    #expect(config?.targets.first?.options.labels == [Label("country", "NO"), Label("rack", "12")])
  }

  @Test func labelNamesAreChecked() {
    let lines = errorLines("targets:\n  - host: 198.18.0.1\n    labels: {9lives: a, instance: b, target: c, __x: d}\n")
    #expect(
      lines == [
        "test.yml:3:14: invalid label name '9lives': expected [a-zA-Z_][a-zA-Z0-9_]* not starting with '__'",
        "test.yml:3:25: label 'instance' is set by Prometheus when it scrapes; set it in the scrape config instead",
        "test.yml:3:38: label 'target' is set by the exporter on these series; choose another name",
        "test.yml:3:49: invalid label name '__x': expected [a-zA-Z_][a-zA-Z0-9_]* not starting with '__'",
      ])
  }

  /// A custom label may not repeat a label name the exporter sets on any series that
  /// carries it: `netprobe_ping_target_info{socket="raw",socket="x"}` fails the whole scrape.
  @Test func everyLabelTheExporterSetsIsRefusedAsACustomLabel() {
    #expect(Set(["socket", "responder", "hop", "le", "errno", "code"]).isSubset(of: ConfigSchema.reservedTargetLabels))
    #expect(Set(["name", "group", "source", "errno", "reason", "type", "le"]).isSubset(of: ConfigSchema.reservedGroupLabels))
    for name in ConfigSchema.reservedTargetLabels {
      let lines = errorLines("targets:\n  - host: 198.18.0.1\n    labels: {\(name): x}\n")
      #expect(lines == ["test.yml:3:14: label '\(name)' is set by the exporter on these series; choose another name"])
    }
    for name in ConfigSchema.reservedGroupLabels {
      let lines = errorLines("multicast:\n  - group: 239.1.1.1\n    port: 5000\n    interface: lo\n    labels: {\(name): x}\n")
      #expect(lines == ["test.yml:5:14: label '\(name)' is set by the exporter on these series; choose another name"])
    }
    for family in Catalogue.all where family.labels.starts(with: ["target", "host", "address", "family"]) {
      #expect(Set(family.labels).isSubset(of: ConfigSchema.reservedTargetLabels), "\(family.name)")
    }
  }

  @Test func crossChecks() {
    #expect(
      errorLines("targets:\n  - host: 198.18.0.1\n    family: ip6\n")
        == ["test.yml:3:13: family ip6 contradicts host 198.18.0.1, an ip4 address"])
    #expect(
      errorLines("targets:\n  - host: 198.18.0.1\n    source: '2001:db8::1'\n")
        == ["test.yml:3:13: source 2001:db8::1 is ip6 but host 198.18.0.1 is ip4"])
    #expect(
      errorLines("multicast:\n  - group: 239.1.1.1\n    port: 1\n    interface: lo\n    sources: ['2001:db8::1']\n")
        == ["test.yml:5:15: source 2001:db8::1 is ip6 but group 239.1.1.1 is ip4"])
    #expect(
      errorLines("multicast:\n  - {group: 239.1.1.1, port: 1, interface: lo, format: sequence}\n")
        == ["test.yml:2:56: format sequence needs a 'sequence' mapping with offset, width and endianness"])
    #expect(
      errorLines(
        "multicast:\n  - group: 239.1.1.1\n    port: 1\n    interface: lo\n    format: sequence\n    sequence: {offset: 0, width: 3}\n")
        == ["test.yml:6:34: sequence width must be 2, 4 or 8 bytes, got 3"])
    #expect(
      errorLines("multicast:\n  - {group: 239.1.1.1, port: 1, interface: lo, format: rtp, restart_gap: 1s}\n")
        == ["test.yml:2:61: 'restart_gap' applies only to format mpegts"])
    #expect(errorLines("multicast:\n  - {group: 239.1.1.1, port: 1, interface: lo, format: mpegts, restart_gap: 5ms}\n").count == 1)
    #expect(errorLines("push:\n  url: ftp://x\n") == ["test.yml:2:8: expected an http:// or https:// URL, got 'ftp://x'"])
    #expect(
      errorLines("push:\n  url: http://x\n  interval: 5s\n  timeout: 5s\n")
        == ["test.yml:4:12: push timeout (5s) must be shorter than its interval (5s), so pushes never overlap"])
    #expect(
      errorLines("ping:\n  rtt_buckets: [0.1, 0.05]\n")
        == ["test.yml:2:22: rtt_buckets must increase: 0.05 is not above 0.1"])
  }

  @Test func querierWatchProtocols() throws {
    let plain = try loadConfig("querier_watch:\n  interfaces: [eth0]\n").get()
    #expect(plain.querierWatch?.protocols == [.igmp], "IGMP only by default")
    let both = try loadConfig("querier_watch:\n  interfaces: [eth0]\n  protocols: [mld, igmp]\n").get()
    #expect(both.querierWatch?.protocols == [.mld, .igmp])
    #expect(
      errorLines("querier_watch:\n  interfaces: [eth0]\n  protocols: []\n")
        == ["test.yml:3:14: querier_watch.protocols must list igmp, mld or both"])
    #expect(
      errorLines("querier_watch:\n  interfaces: [eth0]\n  protocols: igmp\n")
        == ["test.yml:3:14: querier_watch.protocols must be a list, got a scalar"])
    let summary = ConfigSummary(config: both, source: .embedded).text
    #expect(
      summary.contains(
        "Querier watch (mld and igmp) on: eth0\n  query interval 2m5s (the RFC default) unless announced, robustness 2, response 10s\n"))
  }

  @Test func wrongShapesAreNamed() {
    #expect(errorLines("targets: 198.18.0.1\n") == ["test.yml:1:10: targets must be a list, got a scalar"])
    #expect(errorLines("targets:\n  - 198.18.0.1\n") == ["test.yml:2:5: targets[0] must be a mapping, got a scalar"])
    #expect(errorLines("- a\n") == ["test.yml:1:1: the configuration must be a mapping, got a list"])
    #expect(
      errorLines("defaults:\n  trace: sometimes\n")
        == ["test.yml:2:10: defaults.trace must be true, false or a mapping of trace settings, got 'sometimes'"])
  }

  @Test func defaultsTraceMappingDoesNotEnableTracing() throws {
    let config = try loadConfig(
      "defaults:\n  trace: {interval: 2m}\ntargets:\n  - host: 198.18.0.1\n  - host: 198.18.0.2\n    trace: {max_hops: 5}\n"
    ).get()
    #expect(!config.targets[0].options.trace.enabled)
    #expect(config.targets[1].options.trace.enabled)
    #expect(config.targets[1].options.trace.interval == .seconds(120))
    #expect(config.targets[1].options.trace.maxHops == 5)
  }

  @Test func traceProtocolDefaultsToICMPAndTakesUDP() throws {
    let config = try loadConfig(
      "defaults:\n  trace: {protocol: udp, vary_flow: true}\ntargets:\n  - host: 198.18.0.1\n    trace: true\n"
        + "  - host: 198.18.0.2\n    trace: {protocol: icmp}\n  - host: 198.18.0.3\n    trace: {max_hops: 5}\n"
    ).get()
    #expect(TraceOptions().probeProtocol == .icmp, "nothing changes for existing users")
    #expect(config.targets.map(\.options.trace.probeProtocol) == [.udp, .icmp, .udp])
    #expect(config.targets[0].options.trace.varyFlow)
    #expect(
      errorLines("targets:\n  - host: 198.18.0.1\n    trace: {protocol: upd}\n")
        == ["test.yml:3:23: expected one of icmp, udp, got 'upd' (did you mean 'udp'?)"])
  }

  @Test func relativePathsResolveAgainstTheConfigFile() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("netprobe-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("netprobe.yml")
    try "push:\n  url: http://127.0.0.1:9091\n  basic_auth: {username: u, password_file: secret}\n".write(
      to: file, atomically: true, encoding: .utf8)
    let config = try ConfigLoader.load(.file(file.path)).get()
    #expect(config.push?.basicAuth?.passwordFile == directory.appendingPathComponent("secret").path)
    #expect(ConfigLoader.unreadableFiles(in: config) == [directory.appendingPathComponent("secret").path])
  }

  @Test func missingFileIsReportedAtItsName() {
    guard case .failure(let errors) = ConfigLoader.load(.file("/nonexistent/netprobe.yml")) else {
      Issue.record("a missing file loaded")
      return
    }
    #expect(errors.lines.count == 1)
    #expect(errors.lines[0].hasPrefix("/nonexistent/netprobe.yml:1:1: cannot read the file"))
  }

  @Test func shippedConfigsAreValidAndTheEmbeddedOneIsTheFile() throws {
    let configDirectory = packageRoot.appendingPathComponent("config")
    let files = try FileManager.default.subpathsOfDirectory(atPath: configDirectory.path).filter { $0.hasSuffix(".yml") }
    #expect(files.count >= 5)
    for file in files {
      let result = ConfigLoader.load(.file(configDirectory.appendingPathComponent(file).path))
      if case .failure(let errors) = result { Issue.record("\(file): \(errors)") }
    }
    let shipped = try String(contentsOf: configDirectory.appendingPathComponent("netprobe.yml"), encoding: .utf8)
    #expect(EmbeddedConfig.text == shipped, "run `make embed` after editing config/netprobe.yml")
    let embedded = try ConfigLoader.load(.embedded).get()
    #expect(embedded.targets.allSatisfy { $0.address?.isLoopback == true }, "the default config must probe loopback only")
    #expect(embedded.multicast.isEmpty && embedded.beacons.isEmpty && embedded.push == nil)
  }

  @Test func goldenErrorFiles() throws {
    let directory = packageRoot.appendingPathComponent("Tests/NetProbeTests/Fixtures/invalid")
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yml") }.sorted()
    #expect(files.count >= 10)
    for file in files {
      let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
      let goldenURL = directory.appendingPathComponent(file.replacingOccurrences(of: ".yml", with: ".errors"))
      let golden = try String(contentsOf: goldenURL, encoding: .utf8)
      let lines = errorLines(text, file: file)
      #expect(lines.joined(separator: "\n") + "\n" == golden, "\(file)")
    }
  }
}
