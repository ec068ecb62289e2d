@preconcurrency import Glibc
import Foundation
import Logging
import Synchronization
import Testing
@testable import NetProbe

@Suite struct PushTests {
  @Test func groupURLEncodesValuesAsTheGatewayExpects() {
    let url = PushURL.group(base: "http://gw:9091/", job: "netprobe",
                            labels: [Label("instance", "host-a"), Label("owner", "ops team/eu"), Label("empty", ""), Label("site", "fra 1")])
    #expect(url == "http://gw:9091/metrics/job/netprobe/instance/host-a/owner@base64/b3BzIHRlYW0vZXU=/empty@base64/=/site/fra%201")
    #expect(PushURL.group(base: "https://gw", job: "a/b", labels: []) == "https://gw/metrics/job@base64/YS9i")
  }

  @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("\u{fb}\u{ff}", "w7vDvw=="), ("?>?", "Pz4_")])
  func base64URL(input: String, expected: String) {
    #expect(PushURL.base64URL(Array(input.utf8)) == expected)
  }

  @Test func statsAppearOnlyWhenPushIsConfigured() {
    let stats = PushStats()
    var empty = Exposition()
    stats.collect(into: &empty)
    #expect(empty.render().isEmpty)
    stats.setConfigured(true)
    stats.record(.success(retries: 0), duration: 0.012, at: 1_700_000_000)
    stats.record(.failure("refused", retries: 2), duration: 1.5, at: 1_700_000_015)
    var exposition = Exposition()
    stats.collect(into: &exposition)
    let text = String(decoding: exposition.render(), as: UTF8.self)
    #expect(text.contains("netprobe_pushes_total{result=\"failure\"} 1\n"))
    #expect(text.contains("netprobe_pushes_total{result=\"success\"} 1\n"))
    #expect(text.contains("netprobe_push_retries_total 2\n"))
    #expect(text.contains("netprobe_push_last_success_timestamp_seconds 1700000000\n"))
    #expect(text.contains("netprobe_push_duration_seconds 1.5\n"))
  }

  @Test func failuresAreLoggedOncePerMinuteAndRecoveryOnce() {
    let lines = Mutex<[String]>([])
    let logger = Logger(label: "t") { label in
      LineLogHandler(label: label, level: .info, format: .logfmt) { bytes in lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
    }
    var log = FailureLog()
    let start = Date(timeIntervalSince1970: 1_700_000_000)
    for second in stride(from: 0, to: 120, by: 15) {
      log.report(.rejected(status: 500, body: Array("boom\n".utf8), retries: 1), logger: logger, now: start + Double(second))
    }
    log.report(.success(retries: 0), logger: logger, now: start + 125)
    log.report(.success(retries: 0), logger: logger, now: start + 140)
    let captured = lines.withLock { $0 }
    #expect(captured.count == 3)
    #expect(captured[0].contains("msg=\"push rejected by the gateway\"") && captured[0].contains("status=500") && captured[0].contains("body=boom"))
    #expect(captured[1].contains("suppressed_failures=3"))
    #expect(captured[2].contains("msg=\"push recovered\" failing_for=125s"))
  }

  /// A real PUT through libcurl to a one-shot HTTP listener on loopback: the method, path,
  /// headers and body the gateway would see.
  @Test func curlSendsThePutTheGatewayExpects() throws {
    let listener = try Socket(family: AF_INET, type: Int32(SOCK_STREAM.rawValue))
    try listener.bind(to: SocketAddress(.v4(0x7F00_0001), port: 0))
    try listener.listen(backlog: 4)
    let port = try listener.localAddress().port
    let received = Mutex<[UInt8]>([])
    let done = DispatchSemaphore(value: 0)
    Thread {
      defer { done.signal() }
      var entry = [pollfd(fd: listener.fileDescriptor, events: Int16(POLLIN), revents: 0)]
      guard (try? Poller.poll(&entry, timeoutMilliseconds: 5000)) == 1, let connection = try? listener.accept() else { return }
      var buffer = [UInt8](repeating: 0, count: 65536)
      var data: [UInt8] = []
      while !String(decoding: data, as: UTF8.self).hasSuffix("# end\n") {
        var wait = [pollfd(fd: connection.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        guard (try? Poller.poll(&wait, timeoutMilliseconds: 5000)) == 1,
          case .bytes(let count) = try? buffer.withUnsafeMutableBytes({ try connection.receive(into: $0) }) else { break }
        data += buffer[0..<count]
      }
      received.withLock { $0 = data }
      let reply = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
      _ = try? reply.withUnsafeBytes { try connection.send($0) }
    }.start()
    let session = try CurlSession()
    let body = Array(String(repeating: "x", count: 2_000_000).utf8) + Array("\n# end\n".utf8)
    let start = ContinuousClock.now
    let result = session.perform(CurlRequest(method: "PUT", url: "http://127.0.0.1:\(port)/metrics/job/j", body: body,
                                             headers: ["Content-Type: text/plain"], connectTimeout: .seconds(2), totalTimeout: .seconds(5),
                                             username: "u", password: "p"))
    done.wait()
    #expect(try result.get().status == 200)
    // Above 1 MiB libcurl would wait a second for "100 Continue" unless Expect: is suppressed.
    #expect(ContinuousClock.now - start < .milliseconds(900))
    let request = String(decoding: received.withLock { $0 }, as: UTF8.self)
    #expect(request.hasPrefix("PUT /metrics/job/j HTTP/1.1\r\n"))
    #expect(request.contains("Authorization: Basic dTpw\r\n"))
    #expect(!request.lowercased().contains("expect:"))
    #expect(request.hasSuffix("\r\n\r\n" + String(repeating: "x", count: 2_000_000) + "\n# end\n"))
  }

  @Test func curlReportsItsOwnErrorText() throws {
    let session = try CurlSession()
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let result = session.perform(CurlRequest(method: "PUT", url: "http://127.0.0.1:1/metrics/job/j", body: [1],
                                             connectTimeout: .seconds(1), totalTimeout: .seconds(2)))
    guard case .failure(let failure) = result else {
      Issue.record("a push to a closed port succeeded")
      return
    }
    #expect(failure.code == 7)
    #expect(failure.message.contains("127.0.0.1") && failure.message.lowercased().contains("connect"))
  }
}
