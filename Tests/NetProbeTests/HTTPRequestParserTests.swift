import Foundation
import Testing
@testable import NetProbe

@Suite struct HTTPRequestParserTests {
  func parse(_ text: String) -> HTTPRequestParser.Outcome { HTTPRequestParser.parse(Array(text.utf8)) }

  @Test func parsesAGetWithHeadersAndQuery() throws {
    guard case .request(let request, let length) = parse("GET /metrics?a=1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding:  gzip \r\n\r\nrest")
    else {
      Issue.record("not parsed")
      return
    }
    #expect(request.method == "GET" && request.path == "/metrics" && request.query == "a=1" && request.minorVersion == 1)
    #expect(request.header("ACCEPT-ENCODING") == "gzip")
    #expect(request.keepAlive)
    #expect(length == 63)
  }

  @Test func keepAliveFollowsTheVersionAndConnectionHeader() {
    for (text, keepAlive) in [
      ("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false),
      ("GET / HTTP/1.0\r\n\r\n", false),
      ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
      ("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade, close\r\n\r\n", false),
    ] {
      guard case .request(let request, _) = parse(text) else {
        Issue.record("not parsed: \(text)")
        continue
      }
      #expect(request.keepAlive == keepAlive, "\(text)")
    }
  }

  @Test func acceptsBareLineFeedsAbsoluteFormAndLeadingEmptyLines() {
    guard case .request(let request, _) = parse("\r\nGET http://h:1/-/ready?x HTTP/1.1\nHost: h\n\n") else {
      Issue.record("not parsed")
      return
    }
    #expect(request.path == "/-/ready" && request.query == "x")
  }

  @Test func waitsForTheWholeHead() {
    #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n") == .incomplete)
    #expect(parse("") == .incomplete)
  }

  @Test(arguments: [
    ("GET /metrics\r\n\r\n", 400), ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400), ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400), ("GET / HTTP/2.0\r\n\r\n", 505), ("GET / FTP/1.0\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\n\r\n", 400), ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400), ("GET / HTTP/1.1\r\nHo st: x\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413),
    ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    ("GET /\u{7f} HTTP/1.1\r\nHost: x\r\n\r\n", 400), ("GET / HTTP/1.1\r\nHost: a\u{1}b\r\n\r\n", 400),
  ])
  func refusesMalformedRequests(text: String, status: Int) {
    guard case .failure(let got, _) = parse(text) else {
      Issue.record("accepted: \(text.debugDescription)")
      return
    }
    #expect(got.code == status, "\(text.debugDescription)")
  }

  @Test func refusesOversizedHeads() {
    let big = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + String(repeating: "a", count: 17_000)
    guard case .failure(let status, _) = parse(big) else {
      Issue.record("accepted a 17 KB head")
      return
    }
    #expect(status == .requestHeaderFieldsTooLarge)
    let many = "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-A: b\r\n", count: 101) + "\r\n"
    guard case .failure(let status2, _) = parse(many) else {
      Issue.record("accepted 102 headers")
      return
    }
    #expect(status2 == .requestHeaderFieldsTooLarge)
  }

  @Test func survivesRandomInput() {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<5_000 {
      let length = Int.random(in: 0...300, using: &generator)
      let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
      _ = HTTPRequestParser.parse(bytes)
      _ = HTTPRequestParser.parse(Array("GET / HTTP/1.1\r\n".utf8) + bytes + Array("\r\n\r\n".utf8))
    }
  }
}

@Suite struct HTTPResponseTests {
  @Test func serialisesWithLengthAndConnection() {
    let response = HTTPResponse.text(.notFound, "nope\n")
    #expect(
      String(decoding: response.serialized(head: false, keepAlive: true), as: UTF8.self)
        == "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nnope\n")
    #expect(
      String(decoding: response.serialized(head: true, keepAlive: false), as: UTF8.self)
        == "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
  }

  @Test(arguments: [
    ("gzip", true), ("deflate, gzip;q=0.5", true), ("gzip;q=0", false), ("*", true), ("*;q=0", false),
    ("identity", false), ("GZIP", true), ("x-gzip", true), ("*, gzip;q=0", false), ("br;q=1, *;q=0.1", true),
  ])
  func readsAcceptEncoding(header: String, accepts: Bool) {
    #expect(HTTPResponse.acceptsGzip(header) == accepts)
  }

  @Test func compressesLargeBodiesThatGunzipBack() throws {
    let body = Array(String(repeating: "netprobe_metric{a=\"b\"} 1\n", count: 200).utf8)
    let request = HTTPRequest(method: "GET", path: "/metrics", headers: [("accept-encoding", "gzip")])
    let response = HTTPResponse(.ok, body: body).compressedIfAccepted(by: request)
    #expect(response.header("Content-Encoding") == "gzip")
    #expect(response.body.count < body.count / 5)
    let (status, output) = try run("/bin/gzip", ["-dc"], input: Data(response.body))
    #expect(status == 0)
    #expect(Array(output) == body)
    let small = HTTPResponse(.ok, body: Array("tiny".utf8)).compressedIfAccepted(by: request)
    #expect(small.header("Content-Encoding") == nil)
  }
}
