import Dispatch
import Foundation
import Synchronization
import Testing
@testable import NetProbe

/// The same routes as `ExporterRoutesTests`, served over a real socket on 127.0.0.1.
@Suite(.serialized) struct HTTPServerLiveTests {
  /// Starts a server on an ephemeral loopback port around `body`, and stops it after.
  func withServer(
    _ options: HTTPServerOptions = HTTPServerOptions(),
    _ body: (UInt16, RoutesFixture, HTTPServer) throws -> Void
  ) throws {
    let fixture = try RoutesFixture()
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: fixture.routes, options: options)
    fixture.registry.register("http", server.metrics)
    server.start()
    defer { server.stop() }
    try body(server.localAddress.port, fixture, server)
  }

  @Test func servesKeepAliveAndPipelinedRequests() throws {
    try withServer { port, _, _ in
      let connection = try TestConnection(port: port)
      connection.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
      let first = try #require(connection.readResponse())
      #expect(first.status == 200 && first.headers["connection"] == "keep-alive")
      #expect(first.text.contains("# TYPE netprobe_build_info gauge"))
      connection.send(
        "GET /-/healthy HTTP/1.1\r\nHost: t\r\n\r\nHEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
      )
      #expect(connection.readResponse()?.text == "Healthy.\n")
      let head = try #require(connection.readResponse(head: true))
      #expect(head.status == 200 && head.body.isEmpty && head.headers["transfer-encoding"] == "chunked")
      #expect(connection.readResponse()?.status == 404)
      #expect(connection.isClosedByServer())
    }
  }

  /// A body as large as a 10,000-target scrape, for the in-flight budget.
  struct LargeBodyHandler: HTTPHandler {
    var body = [UInt8](repeating: UInt8(ascii: "x"), count: 32 << 20)
    func respond(to request: HTTPRequest) -> HTTPResponse {
      request.path == "/-/healthy" ? .text(.ok, "Healthy.\n") : HTTPResponse(.ok, body: body)
    }
    func handlerLabel(for request: HTTPRequest) -> String { request.path == "/-/healthy" ? "healthy" : "metrics" }
  }

  func largeBodyServer(budget: Int) throws -> HTTPServer {
    var options = HTTPServerOptions()
    options.maxResponseBytesInFlight = budget
    options.maxResponseBytesPerClient = budget  // all from 127.0.0.1: the overall budget is tested
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: LargeBodyHandler(), options: options)
    server.start()
    return server
  }

  /// A streamed body of `pieces` pieces of `pieceBytes`, counting what it has made.
  final class CountingBody: BodyStream, @unchecked Sendable {
    let pieces: Int
    let pieceBytes: Int
    let made = Mutex(0)
    init(pieces: Int, pieceBytes: Int) {
      self.pieces = pieces
      self.pieceBytes = pieceBytes
    }
    func next() -> [UInt8]? {
      made.withLock { made in
        guard made < pieces else { return nil }
        made += 1
        return [UInt8](repeating: UInt8(ascii: "a") + UInt8(made % 26), count: pieceBytes)
      }
    }
  }

  struct StreamingHandler: HTTPHandler {
    let body: CountingBody
    func respond(to request: HTTPRequest) -> HTTPResponse { HTTPResponse(.ok, stream: body) }
    func handlerLabel(for request: HTTPRequest) -> String { "metrics" }
  }

  /// A streamed body goes out in chunks (HTTP/1.1) as it is made, whole and in order, and
  /// the connection stays open for the next request; HTTP/1.0 gets it up to the close.
  @Test func streamsABodyInChunksAndToTheCloseForHTTP10() throws {
    let body = CountingBody(pieces: 40, pieceBytes: 10_000)
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: StreamingHandler(body: body))
    server.start()
    defer { server.stop() }
    let expected = (1...40).flatMap { [UInt8](repeating: UInt8(ascii: "a") + UInt8($0 % 26), count: 10_000) }
    let connection = try TestConnection(port: server.localAddress.port)
    let asked = ContinuousClock.now
    connection.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    let response = try #require(connection.readResponse())
    // The last chunk leaves at once: sent corked (MSG_MORE) it would wait 200 ms for more.
    #expect(ContinuousClock.now - asked < .milliseconds(150))
    #expect(response.status == 200 && response.headers["transfer-encoding"] == "chunked" && response.headers["content-length"] == nil)
    #expect(response.chunkSizes == [Int](repeating: 10_000, count: 40) + [0])
    #expect(response.body == expected)
    #expect(response.headers["connection"] == "keep-alive")

    let old = CountingBody(pieces: 3, pieceBytes: 1000)
    let server10 = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: StreamingHandler(body: old))
    server10.start()
    defer { server10.stop() }
    let connection10 = try TestConnection(port: server10.localAddress.port)
    connection10.send("GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    let response10 = try #require(connection10.readResponse())
    #expect(response10.headers["connection"] == "close" && response10.headers["transfer-encoding"] == nil)
    #expect(response10.body.count == 3000)
  }

  /// Backpressure: a client that does not read makes the server stop making the body once
  /// the socket buffers are full — it holds a piece, not the 200 MB it would come to — and
  /// a client that reads gets all of it.
  @Test func aReaderThatDoesNotReadStopsTheBodyBeingMade() throws {
    let body = CountingBody(pieces: 200, pieceBytes: 1 << 20)
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: StreamingHandler(body: body))
    server.start()
    defer { server.stop() }
    let stalled = try TestConnection(port: server.localAddress.port)
    stalled.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.5)
    let madeWhileStalled = body.made.withLock { $0 }
    // The socket buffers of both ends take a few MB (pieces of 1 MB) before the sender blocks.
    #expect(madeWhileStalled > 0 && madeWhileStalled < 20, "\(madeWhileStalled) pieces made for a reader that reads nothing")
    Thread.sleep(forTimeInterval: 0.3)
    #expect(body.made.withLock { $0 } == madeWhileStalled, "the body went on being made")
    let response = try #require(stalled.readResponse())
    #expect(response.body.count == 200 << 20)
  }

  /// Clients that ask and never read hold their responses; past the budget a new request
  /// gets 503 at once instead of one more copy in memory, and is served again once the
  /// reader has taken its response. Health checks are answered all along.
  @Test func slowReadersCannotHoldMoreThanTheBudget() throws {
    let server = try largeBodyServer(budget: 40 << 20)
    defer { server.stop() }
    let port = server.localAddress.port
    let stalled = try TestConnection(port: port)
    stalled.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.5)  // rendered, and stuck behind the full socket buffers
    let refused = try #require(try get(port, "/metrics"))
    #expect(refused.status == 503 && refused.headers["retry-after"] == "1")
    #expect(try get(port, "/-/healthy")?.status == 200, "a small response is always served")
    let first = try #require(stalled.readResponse())
    #expect(first.status == 200 && first.body.count == 32 << 20)
    #expect(try get(port, "/metrics")?.status == 200)
  }

  /// One client's slow readers hold at most its share of the budget; another client is
  /// still served.
  @Test func oneClientHoldsOnlyItsShareOfTheBudget() throws {
    var options = HTTPServerOptions()
    options.maxResponseBytesInFlight = 1 << 30
    options.maxResponseBytesPerClient = 40 << 20
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: LargeBodyHandler(), options: options)
    server.start()
    defer { server.stop() }
    let port = server.localAddress.port
    let stalled = try TestConnection(port: port)
    stalled.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.5)
    #expect(try get(port, "/metrics")?.status == 503, "the same client, past its share")
    let other = try TestConnection(port: port, source: 0x7F00_0002)
    other.send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    #expect(other.readResponse()?.status == 200, "another client, within the overall budget")
    withExtendedLifetime(stalled) {}
  }

  /// A burst of scrapes that never read, before any response size is known: they are held
  /// to the budget when their responses are built, not all kept (one is always served).
  @Test func aBurstOfStalledScrapesIsHeldToTheBudget() throws {
    let server = try largeBodyServer(budget: 40 << 20)
    defer { server.stop() }
    let port = server.localAddress.port
    let burst = try (0..<6).map { _ in try TestConnection(port: port) }
    for connection in burst { connection.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n") }
    Thread.sleep(forTimeInterval: 1.5)  // all rendered and answered or refused
    let statuses = burst.compactMap { $0.readResponse()?.status }
    #expect(statuses.count == 6)
    #expect(statuses.filter { $0 == 200 }.count >= 1 && statuses.filter { $0 == 200 }.count <= 2, "\(statuses)")
    #expect(statuses.filter { $0 == 503 }.count >= 4, "\(statuses)")
  }

  /// `--web.listen-address=:PORT` serves IPv4 and IPv6 clients alike, as Go exporters do.
  @Test func colonPortListensOnBothFamilies() throws {
    let fixture = try RoutesFixture()
    let address = try #require(SocketAddress.parseListen(":0"))
    let server = try HTTPServer(address: address, handler: fixture.routes)
    server.start()
    defer { server.stop() }
    let port = server.localAddress.port
    #expect(try get(port, "/-/healthy")?.status == 200)
    #expect(try get(port, "/-/healthy", ipv6: true)?.status == 200)
  }

  @Test func answersGarbageWith400AndCloses() throws {
    try withServer { port, fixture, _ in
      let connection = try TestConnection(port: port)
      connection.send([0x16, 0x03, 0x01, 0x02, 0x00] + Array("\r\n\r\n".utf8))
      #expect(connection.readResponse()?.status == 400)
      #expect(connection.isClosedByServer())
      let big = try TestConnection(port: port)
      big.send("GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + String(repeating: "a", count: 20_000) + "\r\n\r\n")
      #expect(big.readResponse()?.status == 431)
      let metrics = fixture.metricsText()
      #expect(metrics.contains("netprobe_http_requests_total{handler=\"invalid\",code=\"400\"} 1\n"))
      #expect(metrics.contains("netprobe_http_requests_total{handler=\"invalid\",code=\"431\"} 1\n"))
    }
  }

  @Test func compressesWhenAsked() throws {
    try withServer { port, _, _ in
      let response = try #require(try get(port, "/metrics", headers: "Accept-Encoding: gzip\r\n"))
      #expect(response.headers["content-encoding"] == "gzip")
      let (status, plain) = try run("/bin/gzip", ["-dc"], input: Data(response.body))
      #expect(status == 0 && String(decoding: plain, as: UTF8.self).contains("netprobe_build_info"))
    }
  }

  @Test func timesOutSlowAndIdleClients() throws {
    var options = HTTPServerOptions()
    options.readTimeout = .milliseconds(300)
    options.idleTimeout = .milliseconds(300)
    try withServer(options) { port, _, _ in
      let partial = try TestConnection(port: port)
      let idle = try TestConnection(port: port)
      partial.send("GET /metrics HTTP/1.1\r\nHost: t\r\n")
      let start = ContinuousClock.now
      #expect(partial.readResponse()?.status == 408)
      #expect(idle.isClosedByServer())
      #expect(ContinuousClock.now - start < .seconds(3))
    }
  }

  /// At the connection limit a newcomer takes the place of the longest-idle connection
  /// instead of being refused (one client holding every slot used to deny every scrape).
  @Test func evictsTheLongestIdleConnectionAtTheLimit() throws {
    var options = HTTPServerOptions()
    options.maxConnections = 3
    try withServer(options) { port, fixture, _ in
      let held = try (0..<3).map { index in
        let connection = try TestConnection(port: port)
        Thread.sleep(forTimeInterval: 0.05 * Double(index + 1))
        return connection
      }
      Thread.sleep(forTimeInterval: 0.2)
      #expect(try get(port, "/-/healthy")?.status == 200)
      #expect(held[0].isClosedByServer(), "the oldest idle connection made room")
      let metrics = fixture.metricsText()
      #expect(metrics.contains("netprobe_http_evicted_connections_total{reason=\"idle\"} 1\n"), "\(metrics)")
      #expect(metrics.contains("netprobe_http_rejected_connections_total 0\n"))
    }
  }

  /// Connections answering a complete request are never evicted: with every slot taken by
  /// one, the newcomer gets 503.
  @Test func refusesWhenEveryConnectionIsAnswering() throws {
    var options = HTTPServerOptions()
    options.maxConnections = 2
    options.maxResponseBytesInFlight = 1 << 30
    options.maxResponseBytesPerClient = 1 << 30
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: LargeBodyHandler(), options: options)
    server.start()
    defer { server.stop() }
    let port = server.localAddress.port
    let stalled = try (0..<2).map { _ in try TestConnection(port: port) }
    for connection in stalled { connection.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n") }
    Thread.sleep(forTimeInterval: 0.5)  // both rendered and stuck behind unread socket buffers
    let extra = try TestConnection(port: port)
    #expect(extra.readResponse()?.status == 503)
    #expect(extra.isClosedByServer())
    withExtendedLifetime(stalled) {}
  }

  /// One client address holds at most `maxConnectionsPerClient`; above it, its own
  /// longest-idle connection goes, and a client with a complete request is unaffected.
  @Test func limitsConnectionsPerClientAddress() throws {
    var options = HTTPServerOptions()
    options.maxConnectionsPerClient = 4
    try withServer(options) { port, fixture, _ in
      let held = try (0..<4).map { _ in try TestConnection(port: port) }
      Thread.sleep(forTimeInterval: 0.2)
      let response = try get(port, "/-/healthy")
      #expect(response?.status == 200)
      #expect(held[0].isClosedByServer())
      #expect(fixture.metricsText().contains("netprobe_http_evicted_connections_total{reason=\"idle\"} 1\n"))
    }
  }

  /// Under pressure (three quarters of the slots taken) a connection that has not sent a
  /// complete request within `pressureReadTimeout` is closed, not after `readTimeout`.
  @Test func tighterDeadlineUnderPressure() throws {
    var options = HTTPServerOptions()
    options.maxConnections = 4
    options.readTimeout = .seconds(30)
    options.idleTimeout = .seconds(30)
    options.pressureReadTimeout = .milliseconds(300)
    try withServer(options) { port, fixture, _ in
      let slow = try (0..<3).map { _ in try TestConnection(port: port) }
      slow[0].send("GET /metrics HTTP/1.1\r\n")
      let start = ContinuousClock.now
      #expect(slow[0].readResponse()?.status == 408)
      #expect(slow[1].isClosedByServer() && slow[2].isClosedByServer())
      #expect(ContinuousClock.now - start < .seconds(3))
      #expect(fixture.metricsText().contains("netprobe_http_evicted_connections_total{reason=\"pressure_timeout\"} 3\n"))
    }
  }

  /// A response the client does not acknowledge within `writeTimeout` is dropped even
  /// when it has all left the process: the kernel's send queue is part of the deadline.
  @Test func dropsAResponseNotAcknowledgedInTime() throws {
    var options = HTTPServerOptions()
    options.writeTimeout = .milliseconds(500)
    options.sendBufferBytes = 64 << 10
    let fixture = try RoutesFixture()
    // A body that fits in the kernel's send queue: it all leaves the process at once.
    let handler = LargeBodyHandler(body: [UInt8](repeating: UInt8(ascii: "x"), count: 48 << 10))
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: handler, options: options)
    fixture.registry.register("http", server.metrics)
    server.start()
    defer { server.stop() }
    let stalled = try TestConnection(port: server.localAddress.port, receiveBufferBytes: 4096)
    stalled.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    Thread.sleep(forTimeInterval: 1.5)
    #expect(stalled.isClosedByServer(draining: true))
    #expect(fixture.metricsText().contains("netprobe_http_evicted_connections_total{reason=\"unread_response\"} 1\n"))
  }

  /// The issue's bar: 200 concurrent scrapes plus 50 idle, slow connections, all answered.
  /// All from 127.0.0.1, so the per-client limit is lifted: this is about concurrency.
  @Test func twoHundredScrapesBesideFiftySlowClients() throws {
    var options = HTTPServerOptions()
    options.maxConnectionsPerClient = 0
    try withServer(options) { port, _, _ in
      let slow = try (0..<50).map { _ in try TestConnection(port: port, timeoutSeconds: 30) }
      let request = Array("GET /metrics HTTP/1.1\r\nHost: slow\r\nConnection: close\r\n\r\n".utf8)
      let answered = Atomic<Int>(0)
      let group = DispatchGroup()
      // The slow clients dribble their requests a few bytes every 20 ms…
      let slowThread = Thread {
        var offset = 0
        while offset < request.count {
          let end = min(request.count, offset + 3)
          for connection in slow { connection.send(Array(request[offset..<end])) }
          offset = end
          Thread.sleep(forTimeInterval: 0.02)
        }
      }
      slowThread.start()
      // …while 200 scrapers hit the server at once.
      for _ in 0..<200 {
        group.enter()
        Thread {
          if let response = try? get(port, "/metrics"), response.status == 200, response.text.contains("netprobe_build_info") {
            answered.add(1, ordering: .relaxed)
          }
          group.leave()
        }.start()
      }
      #expect(group.wait(timeout: .now() + 30) == .success)
      #expect(answered.load(ordering: .relaxed) == 200)
      let slowAnswers = slow.compactMap { $0.readResponse() }.filter { $0.status == 200 }
      #expect(slowAnswers.count == 50)
    }
  }

  @Test func stopsWithinASecondWithOpenConnections() throws {
    let fixture = try RoutesFixture()
    let server = try HTTPServer(address: SocketAddress(.v4(0x7F00_0001), port: 0), handler: fixture.routes)
    server.start()
    let open = try (0..<10).map { _ in try TestConnection(port: server.localAddress.port) }
    open[0].send("GET /metrics HTTP/1.1\r\nHost: t\r\n")
    let start = ContinuousClock.now
    server.stop()
    #expect(ContinuousClock.now - start < .seconds(1))
    #expect(open.allSatisfy { $0.isClosedByServer() })
    #expect(throws: (any Error).self) { try TestConnection(port: server.localAddress.port) }
  }
}

@Suite struct GzipTests {
  /// Several parts make one gzip stream of their concatenation, as the single-buffer call
  /// does (what `/metrics` sends is the stream's pieces, unjoined). igzip's bytes depend on
  /// how the input was split, so each is checked by gzip(1) itself.
  @Test func partsCompressAsOneStream() throws {
    let parts: [[UInt8]] = (0..<50).map { index in Array("family_\(index) \(String(repeating: "x", count: index * 97))\n".utf8) }
    let joined = Array(parts.joined())
    let compressed = try #require(Gzip.compress(parts: parts))
    #expect(compressed.count < joined.count / 4)
    let (status, plain) = try run("/bin/gzip", ["-dc"], input: Data(compressed))
    #expect(status == 0)
    #expect(Array(plain) == joined)
    let single = try #require(Gzip.compress(joined))
    #expect(try run("/bin/gzip", ["-dc"], input: Data(single)) == (0, Data(joined)))
    #expect(try #require(Gzip.compress(parts: [])).count > 0)  // an empty member is still a valid gzip
  }
}
