import Testing
@testable import NetProbe

/// Native histograms from configuration to the wire: the engines' histograms get them, a
/// reload that changes them starts the histogram afresh, and `/metrics` serves protobuf
/// only to a client that asks for it.
@Suite struct NativeHistogramWiringTests {
  @Test func pingTargetsKeepANativeHistogramWhenConfigured() throws {
    let config = try loadConfig("ping:\n  native_histograms: true\ntargets:\n  - {name: a, host: 198.18.0.1}\n").get()
    let target = PingTarget(
      config: config.targets[0], slot: 0, rttBuckets: config.ping.rttBuckets, native: config.ping.nativeHistograms)
    target.state.withLock { $0.histogram.record(0.001) }
    let native = try #require(target.state.withLock { $0.histogram.snapshot.native })
    #expect(native.positive.indices == [-79] && native.positive.counts == [1])
    // Keeping the settings keeps the counts; another bucket factor starts afresh.
    _ = target.update(to: config.targets[0], rttBuckets: config.ping.rttBuckets, native: config.ping.nativeHistograms)
    #expect(target.state.withLock { $0.histogram.snapshot.count } == 1)
    var finer = NativeHistogramSettings()
    finer.bucketFactor = 1.01
    _ = target.update(to: config.targets[0], rttBuckets: config.ping.rttBuckets, native: finer)
    #expect(target.state.withLock { $0.histogram.snapshot.count } == 0)
    // 2^(1/64) = 1.0109 is wider than 1.01; 2^(1/128) = 1.0054 is not: schema 7.
    #expect(target.state.withLock { $0.histogram.snapshot.native?.schema } == 7)
  }

  @Test func oneWayDelayGetsItToo() throws {
    let config = MulticastGroupConfig(
      name: "a", group: try #require(IPAddress("239.1.1.1")), port: 5000, interface: "eth0",
      location: SourceLocation(line: 1, column: 1))
    let group = MulticastGroup(config: config, delayBuckets: [0.001], nativeDelay: NativeHistogramSettings())
    let stream = try #require(group.streams[""])
    // A sender's clock ahead of ours makes a negative delay: a negative bucket, not lost.
    stream.stats.withLock { $0.oneWayDelay.record(-0.002) }
    let native = try #require(stream.stats.withLock { $0.oneWayDelay.snapshot.native })
    #expect(native.negative.count == 1 && native.positive.count == 0)
    #expect(MulticastGroup(config: config, delayBuckets: [0.001]).streams[""]?.stats.withLock { $0.oneWayDelay.snapshot.native } == nil)
  }

  @Test func metricsAnswerInTheFormatAccepted() throws {
    let fixture = try RoutesFixture()
    let protobufAccept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    let response = fixture.routes.respond(
      to: HTTPRequest(method: "GET", path: "/metrics", headers: [("host", "x"), ("accept", protobufAccept)]))
    #expect(response.header("Content-Type") == ProtobufExposition.contentType)
    #expect(response.header("Vary") == "Accept")
    // The first family, netprobe_build_info: its length as a varint (bytes with the high bit
    // set, then one without), then field 1, its name.
    let body = response.allBytes
    let name = Array("netprobe_build_info".utf8)
    let start = body.prefix { $0 >= 0x80 }.count + 1
    #expect(Array(body[start..<start + 2 + name.count]) == [0x0A, UInt8(name.count)] + name)
    let text = fixture.request("GET", "/metrics")
    #expect(text.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
  }
}
