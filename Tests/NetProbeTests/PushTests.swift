@preconcurrency import Glibc
import Foundation
import Logging
import Synchronization
import Testing
@testable import NetProbe

@Suite struct PushTests {
  @Test func groupURLEncodesValuesAsTheGatewayExpects() {
    let url = PushURL.group(
      base: "http://gw:9091/", job: "netprobe",
      labels: [Label("instance", "host-a"), Label("owner", "ops team/eu"), Label("empty", ""), Label("site", "fra 1")])
    #expect(url == "http://gw:9091/metrics/job/netprobe/instance/host-a/owner@base64/b3BzIHRlYW0vZXU=/empty@base64/=/site/fra%201")
    #expect(PushURL.group(base: "https://gw", job: "a/b", labels: []) == "https://gw/metrics/job@base64/YS9i")
  }

  @Test(arguments: [
    ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("\u{fb}\u{ff}", "w7vDvw=="), ("?>?", "Pz4_"),
  ])
  func base64URL(input: String, expected: String) {
    #expect(PushURL.base64URL(Array(input.utf8)) == expected)
  }

  @Test func statsAppearOnlyWhenPushIsConfigured() {
    let stats = PushStats()
    var empty = Exposition()
    stats.collect(into: &empty)
    #expect(empty.render().isEmpty)
    stats.setConfigured(interval: .seconds(3600))
    stats.record(.success(), duration: 0.012, at: 1_700_000_000)
    stats.record(.failed(.failure("refused"), retries: 2), duration: 1.5, at: 1_700_000_015)
    var exposition = Exposition()
    stats.collect(into: &exposition)
    let text = String(decoding: exposition.render(), as: UTF8.self)
    #expect(text.contains("netprobe_pushes_total{result=\"failure\"} 1\n"))
    #expect(text.contains("netprobe_pushes_total{result=\"success\"} 1\n"))
    #expect(text.contains("netprobe_push_retries_total 2\n"))
    #expect(text.contains("netprobe_push_last_success_timestamp_seconds 1700000000\n"))
    #expect(text.contains("netprobe_push_duration_seconds 1.5\n"))
    #expect(text.contains("netprobe_push_interval_seconds 3600\n"))
    // Push removed by a reload: the counters stay, the interval goes.
    stats.setConfigured(interval: nil)
    var after = Exposition()
    stats.collect(into: &after)
    let removed = String(decoding: after.render(), as: UTF8.self)
    #expect(removed.contains("netprobe_pushes_total{result=\"success\"} 1\n"))
    #expect(!removed.contains("netprobe_push_interval_seconds"))
  }

  // MARK: Logging

  /// The lines a logger wrote.
  final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    func withLock<T>(_ body: ([String]) -> T) -> T { lines.withLock { body($0) } }
  }

  /// A logger whose lines land in the returned box.
  private func capturingLogger() -> (Logger, LogLines) {
    let lines = LogLines()
    let logger = Logger(label: "t") { label in
      LineLogHandler(label: label, level: .info, format: .logfmt) { bytes in lines.append(String(decoding: bytes, as: UTF8.self)) }
    }
    return (logger, lines)
  }

  private static let start = Date(timeIntervalSince1970: 1_700_000_000)

  @Test func failuresAreLoggedOncePerMinuteAndRecoveryOnce() {
    let (logger, lines) = capturingLogger()
    var log = FailureLog()
    for second in stride(from: 0, to: 120, by: 15) {
      log.report(.failed(.rejected(status: 500, body: Array("boom\n".utf8)), retries: 1), logger: logger, now: Self.start + Double(second))
    }
    log.report(.success(), logger: logger, now: Self.start + 125)
    log.report(.success(), logger: logger, now: Self.start + 140)
    let captured = lines.withLock { $0 }
    #expect(captured.count == 3)
    #expect(
      captured[0].contains("msg=\"push rejected by the gateway\"") && captured[0].contains("status=500")
        && captured[0].contains("body=boom"))
    #expect(captured[1].contains("suppressed_failures=3"))
    // The failures at 75, 90 and 105 s were not logged: the recovery line counts them.
    #expect(
      captured[2].contains("msg=\"push recovered\"") && captured[2].contains("failing_for=125s")
        && captured[2].contains("suppressed_failures=3"))
  }

  @Test func theFirstFailureOfANewOutageIsLoggedAtOnce() {
    let (logger, lines) = capturingLogger()
    var log = FailureLog()
    log.report(.failed(.failure("refused")), logger: logger, now: Self.start)
    log.report(.success(), logger: logger, now: Self.start + 15)
    log.report(.failed(.failure("timed out")), logger: logger, now: Self.start + 30)
    let captured = lines.withLock { $0 }
    #expect(captured.count == 3)
    #expect(captured[2].contains("msg=\"push failed\"") && captured[2].contains("error=\"timed out\""))
  }

  @Test func anotherKindOfFailureIsLoggedAtOnce() {
    let (logger, lines) = capturingLogger()
    var log = FailureLog()
    log.report(.failed(.failure("Operation timed out")), logger: logger, now: Self.start)
    log.report(.failed(.rejected(status: 500, body: Array("storage broke".utf8))), logger: logger, now: Self.start + 15)
    log.report(.failed(.rejected(status: 500, body: Array("storage broke".utf8))), logger: logger, now: Self.start + 30)
    log.report(.failed(.failure("Operation timed out")), logger: logger, now: Self.start + 45)
    log.report(.failed(.rejected(status: 503, body: [])), logger: logger, now: Self.start + 50)
    let captured = lines.withLock { $0 }
    #expect(captured.count == 3)
    #expect(captured[0].contains("error=\"Operation timed out\""))
    #expect(captured[1].contains("status=500") && captured[1].contains("body=\"storage broke\""))
    #expect(captured[2].contains("status=503"))
  }

  @Test func aFlappingGatewayLogsAtMostThreeLinesAMinute() {
    let (logger, lines) = capturingLogger()
    var log = FailureLog()
    // Ten minutes of one push in two failing, every 15 s: 40 pushes, 20 recoveries.
    for push in 0..<40 {
      let outcome: PushOutcome = push.isMultiple(of: 2) ? .failed(.rejected(status: 503, body: [])) : .success()
      log.report(outcome, logger: logger, now: Self.start + Double(push * 15))
    }
    let captured = lines.withLock { $0 }
    let recoveries = captured.filter { $0.contains("msg=\"push recovered\"") }
    let failures = captured.filter { $0.contains("msg=\"push rejected by the gateway\"") }
    #expect(captured.count <= 30, "\(captured.count) lines in 10 minutes")
    #expect(recoveries.count <= 10 && recoveries.count >= 5)
    #expect(failures.count <= 20 && failures.count >= 5)
    #expect(recoveries.contains { $0.contains("suppressed_recoveries=") })
    // Nothing is lost: logged plus suppressed counts add up to every failure.
    let suppressed = captured.compactMap { line -> Int? in
      guard let range = line.range(of: "suppressed_failures=") else { return nil }
      return Int(line[range.upperBound...].prefix { $0.isNumber })
    }.reduce(0, +)
    #expect(failures.count + suppressed >= 19)
  }

  @Test func aRejectionThatARetryCuredIsLoggedWithTheBody() {
    let (logger, lines) = capturingLogger()
    var log = FailureLog()
    log.report(.success(retries: 1, after: .rejected(status: 500, body: Array("storage broke\n".utf8))), logger: logger, now: Self.start)
    log.report(
      .success(retries: 1, after: .rejected(status: 500, body: Array("storage broke\n".utf8))), logger: logger, now: Self.start + 15)
    log.report(.success(retries: 1, after: .failure("connection reset")), logger: logger, now: Self.start + 75)
    let captured = lines.withLock { $0 }
    #expect(captured.count == 2)
    #expect(
      captured[0].contains("msg=\"push accepted after the gateway rejected an attempt\"") && captured[0].contains("status=500")
        && captured[0].contains("body=\"storage broke\""))
    #expect(captured[1].contains("msg=\"push accepted after a failed attempt\"") && captured[1].contains("suppressed_failures=1"))
  }

  @Test func excerptKeeps512BytesWithoutSurroundingWhitespace() {
    #expect(PushOutcome.excerpt(Array("\n  first\nsecond \n".utf8)) == "first\nsecond")
    #expect(PushOutcome.excerpt(Array(repeating: UInt8(ascii: "a"), count: 2000)).count == 512)
  }

  // MARK: Retries

  @Test func backoffDoublesFrom200MillisecondsTo5Seconds() {
    var schedule = RetrySchedule()
    var uppers: [Int] = []
    var lowers: [Int] = []
    for _ in 0..<8 {
      _ = schedule.nextWait(remaining: .seconds(60)) { range in
        uppers.append(range.upperBound)
        lowers.append(range.lowerBound)
        return range.upperBound
      }
    }
    #expect(uppers == [200, 400, 800, 1600, 3200, 5000, 5000, 5000])
    #expect(lowers.allSatisfy { $0 == 50 })
  }

  @Test func jitterPicksAWaitWithinTheBounds() {
    for _ in 0..<200 {
      var schedule = RetrySchedule()
      for _ in 0..<4 { _ = schedule.nextWait(remaining: .seconds(60)) }
      let bound = schedule.backoff
      let wait = schedule.nextWait(remaining: .seconds(60))!
      #expect(wait >= .milliseconds(50) && wait <= bound)
    }
  }

  @Test func noRetryThatWouldEndPastTheDeadline() {
    var schedule = RetrySchedule()
    // A 150 ms wait leaves 100 ms of attempt only with at least 250 ms to go.
    #expect(schedule.nextWait(remaining: .milliseconds(249)) { _ in 150 } == nil)
    #expect(schedule.nextWait(remaining: .milliseconds(250)) { _ in 150 } == .milliseconds(150))
  }

  @Test(arguments: [
    (500, true), (502, true), (503, true), (408, true), (429, true),
    (400, false), (401, false), (403, false), (404, false), (413, false), (301, false),
  ])
  func retriesOnlyWhatMayPass(status: Int, retried: Bool) {
    #expect(RetrySchedule.isRetryable(.rejected(status: status, body: [])) == retried)
    #expect(RetrySchedule.isRetryable(.failure("connection refused")))
  }

  /// `RetrySchedule.push` against a fake clock: each attempt takes `cost`, waits advance the clock.
  private func simulate(timeout: Duration, cost: Duration, answers: [PushAttempt], stopAfterWaits: Int = .max)
    -> (outcome: PushOutcome?, attempts: [Duration], elapsed: Duration)
  {
    let start = ContinuousClock.now
    var now = start
    var attempts: [Duration] = []
    var waits = 0
    let outcome = RetrySchedule.push(
      deadline: start + timeout, now: { now }, random: { $0.upperBound },
      attempt: { limit in
        attempts.append(limit)
        now += min(cost, limit)
        return attempts.count <= answers.count ? answers[attempts.count - 1] : answers.last!
      },
      wait: { pause in
        now += pause
        waits += 1
        return waits < stopAfterWaits
      })
    return (outcome, attempts, now - start)
  }

  @Test func retriesStopBeforeTheDeadline() {
    let failing = PushAttempt.problem(.rejected(status: 503, body: Array("busy".utf8)))
    let (outcome, attempts, elapsed) = simulate(timeout: .seconds(5), cost: .milliseconds(300), answers: [failing])
    #expect(outcome == .failed(.rejected(status: 503, body: Array("busy".utf8)), retries: attempts.count - 1))
    // Attempts end at 0.3, 0.8, 1.5, 2.6 and 4.5 s (after waits of 0.2, 0.4, 0.8, 1.6 s);
    // a 3.2 s wait would leave no time for another.
    #expect(attempts.count == 5)
    #expect(elapsed == .milliseconds(4500))
    // Each attempt's timeout is the time left, so a slow one cannot pass the deadline either.
    let slow = simulate(timeout: .seconds(5), cost: .seconds(60), answers: [.problem(.failure("timed out"))])
    #expect(slow.attempts == [.seconds(5)])
    #expect(slow.elapsed == .seconds(5))
  }

  @Test func aClientErrorIsNotRetriedButATooManyRequestsIs() {
    let notFound = simulate(timeout: .seconds(5), cost: .milliseconds(10), answers: [.problem(.rejected(status: 404, body: []))])
    #expect(notFound.attempts.count == 1)
    #expect(notFound.outcome == .failed(.rejected(status: 404, body: []), retries: 0))
    let busy = PushAttempt.problem(.rejected(status: 429, body: []))
    let cured = simulate(timeout: .seconds(5), cost: .milliseconds(10), answers: [busy, busy, .accepted])
    #expect(cured.attempts.count == 3)
    #expect(cured.outcome == .success(retries: 2, after: .rejected(status: 429, body: [])))
  }

  @Test func stoppingAbandonsThePush() {
    let failing = PushAttempt.problem(.failure("refused"))
    #expect(simulate(timeout: .seconds(5), cost: .milliseconds(10), answers: [failing], stopAfterWaits: 1).outcome == nil)
    #expect(simulate(timeout: .seconds(5), cost: .milliseconds(10), answers: [.abandoned]).outcome == nil)
  }

  // MARK: Body and request

  @Test func aGzippedBodySaysSoAndAnUncompressedOneDoesNot() throws {
    let parts = [Array("# HELP a x\n# TYPE a gauge\n".utf8), Array(String(repeating: "a 1\n", count: 500).utf8), []]
    func drain(_ stream: any BodyStream) -> [UInt8] {
      var bytes: [UInt8] = []
      while let piece = stream.next() { bytes += piece }
      return bytes
    }
    let gzipped = PushBody(gzip: true, source: { BufferedBody(parts) }).open()
    #expect(gzipped.gzipped && !gzipped.compressionFailed)
    #expect(gzipped.headers.contains("Content-Encoding: gzip") && gzipped.headers.contains("Transfer-Encoding: chunked"))
    let (status, output) = try run("/bin/gzip", ["-dc"], input: Data(drain(gzipped.stream)))
    #expect(status == 0 && Array(output) == parts.flatMap { $0 })

    let plain = PushBody(gzip: false, source: { BufferedBody(parts) }).open()
    #expect(drain(plain.stream) == parts.flatMap { $0 } && !plain.headers.contains { $0.hasPrefix("Content-Encoding") })

    // zlib failing (out of memory) must not leave the header on a plain body.
    let failed = PushBody(gzip: true, source: { BufferedBody(parts) }, compress: { _ in nil }).open()
    #expect(!failed.gzipped && failed.compressionFailed)
    #expect(drain(failed.stream) == parts.flatMap { $0 })
    #expect(failed.headers == ["Content-Type: \(Exposition.contentType)", "Transfer-Encoding: chunked"])
  }

  @Test func thePasswordIsReadFromItsFileAtEachRequestWithoutTheLineBreak() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("netprobe-push-password-\(getpid())").path
    defer { unlink(path) }
    var config = PushConfig(url: "http://127.0.0.1:9091")
    config.basicAuth = PushConfig.BasicAuth(username: "agent", passwordFile: path)
    let target = PushTarget(config, hostName: "host-a")
    #expect(target.groupURL == "http://127.0.0.1:9091/metrics/job/netprobe/instance/host-a")

    guard case .failure(let missing) = target.request(method: "PUT", body: nil, timeout: .seconds(1)) else {
      Issue.record("a missing password file gave a request")
      return
    }
    #expect(missing.message.contains("cannot read password_file \(path)"))

    try " s3cret word \r\n".write(toFile: path, atomically: false, encoding: .utf8)
    let first = try target.request(method: "PUT", body: nil, timeout: .seconds(1)).get()
    #expect(first.username == "agent" && first.password == " s3cret word ")
    // Rotated: the next request reads the new one, no reload needed.
    try "n3w\n".write(toFile: path, atomically: false, encoding: .utf8)
    #expect(try target.request(method: "PUT", body: nil, timeout: .seconds(1)).get().password == "n3w")
  }

  @Test func anEmptyInstanceDropsTheLabel() {
    var config = PushConfig(url: "http://gw:9091")
    config.instance = ""
    config.grouping = [Label("site", "")]
    #expect(PushTarget(config, hostName: "host-a").groupURL == "http://gw:9091/metrics/job/netprobe/site@base64/=")
  }

  @Test func theTransferReadsPiecesInAnyChunkSizeAndStartsAgainOnlyFromTheStart() {
    let parts: [[UInt8]] = [Array("abc".utf8), [], Array("defgh".utf8), Array("i".utf8)]
    let made = Mutex(0)
    let transfer = CurlSession.Transfer(
      body: BufferedBody(parts),
      restart: {
        made.withLock { $0 += 1 }
        return BufferedBody(parts)
      })
    func readAll() -> String {
      var chunk = [UInt8](repeating: 0, count: 2)
      var read: [UInt8] = []
      while true {
        let count = chunk.withUnsafeMutableBytes { transfer.read(into: $0) }
        if count == 0 { break }
        read += chunk[0..<count]
      }
      return String(decoding: read, as: UTF8.self)
    }
    #expect(readAll() == "abcdefghi")
    // The body is made as it is read: only its start can be reached again, by making it anew.
    #expect(!transfer.seek(to: 4))
    #expect(transfer.seek(to: 9) && made.withLock { $0 } == 0)
    #expect(transfer.seek(to: 0) && made.withLock { $0 } == 1)
    #expect(readAll() == "abcdefghi")
    // Without a way to make it again, a body read past its start cannot be sent again.
    let once = CurlSession.Transfer(body: BufferedBody(parts), restart: nil)
    var byte = [UInt8](repeating: 0, count: 1)
    #expect(byte.withUnsafeMutableBytes { once.read(into: $0) } == 1)
    #expect(!once.seek(to: 0))
  }

  /// The payload of a chunked body (RFC 9112 7.1), without extensions or trailers.
  static func dechunked(_ text: String) -> String? {
    var rest = Array(text.utf8)[...]
    var payload: [UInt8] = []
    while let lineEnd = rest.firstRange(of: Array("\r\n".utf8)) {
      guard let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else { return nil }
      rest = rest[lineEnd.upperBound...]
      if size == 0 { return Array(rest) == Array("\r\n".utf8) ? String(decoding: payload, as: UTF8.self) : nil }
      guard rest.count >= size + 2 else { return nil }
      payload += rest.prefix(size)
      rest = rest.dropFirst(size + 2)
    }
    return nil
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
      while !String(decoding: data, as: UTF8.self).hasSuffix("\r\n0\r\n\r\n") {
        var wait = [pollfd(fd: connection.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        guard (try? Poller.poll(&wait, timeoutMilliseconds: 5000)) == 1,
          case .bytes(let count) = try? buffer.withUnsafeMutableBytes({ try connection.receive(into: $0) })
        else { break }
        data += buffer[0..<count]
      }
      received.withLock { $0 = data }
      let reply = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
      _ = try? reply.withUnsafeBytes { try connection.send($0) }
    }.start()
    let session = try CurlSession()
    // Pieces as the exposition gives them, an empty one among them: sent in order as made.
    let body = BufferedBody([Array(String(repeating: "x", count: 2_000_000).utf8), [], Array("\n# end\n".utf8)])
    let start = ContinuousClock.now
    let result = session.perform(
      CurlRequest(
        method: "PUT", url: "http://127.0.0.1:\(port)/metrics/job/j", body: body,
        headers: ["Content-Type: text/plain", "Transfer-Encoding: chunked"], connectTimeout: .seconds(2), totalTimeout: .seconds(5),
        username: "u", password: "p"))
    done.wait()
    #expect(try result.get().status == 200)
    // Above 1 MiB libcurl would wait a second for "100 Continue" unless Expect: is suppressed.
    #expect(ContinuousClock.now - start < .milliseconds(900))
    let request = String(decoding: received.withLock { $0 }, as: UTF8.self)
    #expect(request.hasPrefix("PUT /metrics/job/j HTTP/1.1\r\n"))
    #expect(request.contains("Transfer-Encoding: chunked\r\n") && !request.contains("Content-Length"))
    #expect(request.contains("Authorization: Basic dTpw\r\n"))
    #expect(!request.lowercased().contains("expect:"))
    let head = request.range(of: "\r\n\r\n")!
    #expect(Self.dechunked(String(request[head.upperBound...])) == String(repeating: "x", count: 2_000_000) + "\n# end\n")
  }

  @Test func curlReportsItsOwnErrorText() throws {
    let session = try CurlSession()
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let result = session.perform(
      CurlRequest(
        method: "PUT", url: "http://127.0.0.1:1/metrics/job/j", body: BufferedBody([[1]]),
        connectTimeout: .seconds(1), totalTimeout: .seconds(2)))
    guard case .failure(let failure) = result else {
      Issue.record("a push to a closed port succeeded")
      return
    }
    #expect(failure.code == 7)
    #expect(failure.message.contains("127.0.0.1") && failure.message.lowercased().contains("connect"))
  }

  /// A gateway that accepts the connection and never answers: the transfer is dropped
  /// within 100 ms of its owner saying so (1 s allowed here, for a loaded machine), not at
  /// its 10 s timeout.
  @Test func aTransferInFlightIsAbandonedWhenItsOwnerSaysSo() throws {
    let listener = try Socket(family: AF_INET, type: Int32(SOCK_STREAM.rawValue))
    try listener.bind(to: SocketAddress(.v4(0x7F00_0001), port: 0))
    try listener.listen(backlog: 4)
    let port = try listener.localAddress().port
    let session = try CurlSession()
    let start = ContinuousClock.now
    let result = session.perform(
      CurlRequest(
        method: "PUT", url: "http://127.0.0.1:\(port)/metrics/job/j", body: BufferedBody([Array("a 1\n".utf8)]),
        connectTimeout: .seconds(10), totalTimeout: .seconds(10)),
      abandon: { ContinuousClock.now - start > .milliseconds(300) })
    let elapsed = ContinuousClock.now - start
    guard case .failure(let failure) = result else {
      Issue.record("a request nobody answered succeeded")
      return
    }
    #expect(failure.code == CurlFailure.abandonedCode)
    #expect(elapsed >= .milliseconds(300) && elapsed < .milliseconds(1300), "abandoned after \(elapsed)")
    // The session still works afterwards (the dropped transfer left the multi handle).
    let refused = session.perform(
      CurlRequest(
        method: "DELETE", url: "http://127.0.0.1:1/metrics/job/j",
        connectTimeout: .seconds(1), totalTimeout: .seconds(2)))
    guard case .failure(let second) = refused else {
      Issue.record("a DELETE to a closed port succeeded")
      return
    }
    #expect(second.code == 7)
  }
}
