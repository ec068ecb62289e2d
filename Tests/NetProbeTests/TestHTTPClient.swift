@preconcurrency import Glibc
import Foundation

/// A deliberately plain blocking HTTP client for live-socket tests: it sends exactly the
/// bytes given, so tests can also send garbage, dribble a request or never finish one.
/// Unchecked Sendable: a test hands a connection to one thread at a time.
final class TestConnection: @unchecked Sendable {
  let fd: Int32

  /// Connects to 127.0.0.1, or to ::1 with `ipv6`.
  /// `receiveBufferBytes`: SO_RCVBUF before connecting, to play a slow reader whose
  /// window closes after a few kilobytes.
  /// `source`: an IPv4 source address (host order, e.g. 127.0.0.2) to be another client.
  init(port: UInt16, ipv6: Bool = false, timeoutSeconds: Int = 10, receiveBufferBytes: Int32? = nil, source: UInt32? = nil) throws {
    fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
    if let source {
      var local = sockaddr_in()
      local.sin_family = sa_family_t(AF_INET)
      local.sin_addr = in_addr(s_addr: source.bigEndian)
      let bound = withUnsafePointer(to: &local) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
      }
      guard bound == 0 else {
        let code = errno
        close(fd)
        throw POSIXError(.init(rawValue: code)!)
      }
    }
    if var size = receiveBufferBytes {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let result: Int32
    if ipv6 {
      var address = sockaddr_in6()
      address.sin6_family = sa_family_t(AF_INET6)
      address.sin6_port = port.bigEndian
      address.sin6_addr.__in6_u.__u6_addr8.15 = 1
      result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
      }
    } else {
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = port.bigEndian
      address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
      result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
      }
    }
    guard result == 0 else {
      let code = errno
      close(fd)
      throw POSIXError(.init(rawValue: code)!)
    }
  }

  deinit { close(fd) }

  func send(_ text: String) { send(Array(text.utf8)) }

  func send(_ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
      let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
      if written <= 0 { return }
      offset += written
    }
  }

  /// Reads one response: head, then a body of Content-Length bytes, or chunks
  /// (`Transfer-Encoding: chunked`, decoded; `chunkSizes` lists them), or up to the end of
  /// the stream when the response has neither; none for HEAD.
  func readResponse(head: Bool = false) -> TestResponse? {
    var buffer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      if let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) {
        let headText = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let status = Int(statusLine.split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines {
          let parts = line.split(separator: ":", maxSplits: 1)
          if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        var body = Array(buffer[end.upperBound...])
        /// Reads until `body` holds at least `count` bytes; false at the end of the stream.
        func fill(_ count: Int) -> Bool {
          while body.count < count {
            let received = recv(fd, &chunk, chunk.count, 0)
            if received <= 0 { return false }
            body += chunk[0..<received]
          }
          return true
        }
        if !head, headers["transfer-encoding"] == "chunked" {
          var payload: [UInt8] = []
          var sizes: [Int] = []
          while true {
            while body.firstRange(of: Array("\r\n".utf8)) == nil {
              guard fill(body.count + 1) else { return nil }
            }
            let lineEnd = body.firstRange(of: Array("\r\n".utf8))!
            guard let size = Int(String(decoding: body[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else { return nil }
            body.removeFirst(lineEnd.upperBound)
            guard fill(size + 2), body[size] == UInt8(ascii: "\r"), body[size + 1] == UInt8(ascii: "\n") else { return nil }
            sizes.append(size)
            payload += body[..<size]
            body.removeFirst(size + 2)
            if size == 0 { break }
          }
          leftover = body
          return TestResponse(status: status, headers: headers, body: payload, chunkSizes: sizes)
        }
        if !head, headers["content-length"] == nil {
          while fill(body.count + 1) {}
          return TestResponse(status: status, headers: headers, body: body)
        }
        let length = head ? 0 : Int(headers["content-length"] ?? "0") ?? 0
        guard fill(length) else { return nil }
        leftover = Array(body[length...])
        return TestResponse(status: status, headers: headers, body: Array(body[..<length]))
      }
      if !leftover.isEmpty {
        buffer = leftover
        leftover = []
        continue
      }
      let count = recv(fd, &chunk, chunk.count, 0)
      if count <= 0 { return nil }
      buffer += chunk[0..<count]
    }
  }

  /// True when the server has closed its side (end of stream) or reset the connection
  /// (what a client still in the listen backlog gets when the listener closes); false when
  /// the receive timeout passes with the connection still open.
  func isClosedByServer() -> Bool {
    var byte: UInt8 = 0
    let count = recv(fd, &byte, 1, 0)
    return count == 0 || (count < 0 && errno == ECONNRESET)
  }

  /// The same after reading and discarding whatever the server had sent: true once the
  /// stream ends or is reset, false when the read times out with the connection open.
  func isClosedByServer(draining: Bool) -> Bool {
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = recv(fd, &chunk, chunk.count, 0)
      if count > 0 { continue }
      return count == 0 || errno == ECONNRESET
    }
  }

  private var leftover: [UInt8] = []
}

struct TestResponse {
  var status: Int
  var headers: [String: String]
  var body: [UInt8]
  /// The sizes of a chunked body's chunks, the last (0) included; empty otherwise.
  var chunkSizes: [Int] = []
  var text: String { String(decoding: body, as: UTF8.self) }
}

/// One GET on a fresh connection.
func get(_ port: UInt16, _ path: String, headers: String = "", ipv6: Bool = false) throws -> TestResponse? {
  let connection = try TestConnection(port: port, ipv6: ipv6)
  connection.send("GET \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\(headers)\r\n")
  return connection.readResponse()
}
