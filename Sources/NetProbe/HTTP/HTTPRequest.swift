@preconcurrency import Glibc
import FoundationEssentials

/// An HTTP/1.x request head, parsed from bytes that a client we do not trust sent.
public struct HTTPRequest: Sendable, Equatable {
  public var method: String
  /// The path, percent-decoding not applied (the routes compare raw paths).
  public var path: String
  /// The query string without `?`, or empty.
  public var query: String
  /// `1` for HTTP/1.1, `0` for HTTP/1.0.
  public var minorVersion: Int
  /// Header names lowercased, in arrival order.
  public var headers: [(name: String, value: String)]
  /// The declared body length (bodies are read and discarded).
  public var contentLength: Int

  public init(
    method: String, path: String, query: String = "", minorVersion: Int = 1,
    headers: [(name: String, value: String)] = [], contentLength: Int = 0
  ) {
    self.method = method
    self.path = path
    self.query = query
    self.minorVersion = minorVersion
    self.headers = headers
    self.contentLength = contentLength
  }

  /// The first value of a header, by case-insensitive name.
  public func header(_ name: String) -> String? {
    let lowered = name.lowercased()
    return headers.first { $0.name == lowered }?.value
  }

  /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 closes it unless
  /// `Connection: keep-alive`.
  public var keepAlive: Bool {
    let tokens = (header("connection") ?? "").lowercased().split(separator: ",").map {
      $0.trimmingWhitespace()
    }
    if minorVersion >= 1 { return !tokens.contains("close") }
    return tokens.contains("keep-alive")
  }

  public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
    a.method == b.method && a.path == b.path && a.query == b.query && a.minorVersion == b.minorVersion
      && a.headers.elementsEqual(b.headers, by: { $0.name == $1.name && $0.value == $1.value })
      && a.contentLength == b.contentLength
  }
}

/// Parses request heads. Pure: bytes in, a request or a status out, so that it is fuzzed
/// and tested without sockets.
public enum HTTPRequestParser {
  /// Limits that keep a hostile client from costing more than a few kilobytes.
  public static let maxHeaderBytes = 16 * 1024
  public static let maxHeaderCount = 100
  public static let maxBodyBytes = 64 * 1024

  public enum Outcome: Equatable, Sendable {
    /// The head is not complete yet; read more.
    case incomplete
    /// A complete head that ended `headLength` bytes into the buffer.
    case request(HTTPRequest, headLength: Int)
    /// The client sent something we refuse; answer with this status and close.
    case failure(HTTPStatus, reason: String)
  }

  /// Parses the head at the start of `buffer`.
  public static func parse(_ buffer: some Collection<UInt8>) -> Outcome {
    let bytes = Array(buffer.prefix(maxHeaderBytes + 4))
    guard let headEnd = endOfHead(bytes) else {
      if buffer.count > maxHeaderBytes {
        return .failure(.requestHeaderFieldsTooLarge, reason: "request head larger than \(maxHeaderBytes) bytes")
      }
      return .incomplete
    }
    if headEnd.bodyStart > maxHeaderBytes + 4 {
      return .failure(.requestHeaderFieldsTooLarge, reason: "request head larger than \(maxHeaderBytes) bytes")
    }
    var lines = split(lines: bytes[..<headEnd.contentEnd])
    // RFC 9112 2.2: a server should ignore at least one empty line before the request line.
    while let first = lines.first, first.isEmpty { lines.removeFirst() }
    guard let requestLine = lines.first else { return .failure(.badRequest, reason: "empty request") }
    guard let requestLineText = String(validating: requestLine, as: UTF8.self) else {
      return .failure(.badRequest, reason: "request line is not UTF-8")
    }
    let parts = requestLineText.split(separator: " ", omittingEmptySubsequences: false)
    guard parts.count == 3 else { return .failure(.badRequest, reason: "malformed request line") }
    let method = String(parts[0])
    guard !method.isEmpty, method.utf8.allSatisfy(isTokenByte) else {
      return .failure(.badRequest, reason: "malformed method")
    }
    let minor: Int
    switch parts[2] {
    case "HTTP/1.1": minor = 1
    case "HTTP/1.0": minor = 0
    case let version where version.hasPrefix("HTTP/") && version.count == 8:
      return .failure(.httpVersionNotSupported, reason: "unsupported version \(version)")
    default: return .failure(.badRequest, reason: "malformed version")
    }
    guard let (path, query) = splitTarget(parts[1]) else {
      return .failure(.badRequest, reason: "malformed request target")
    }
    var headers: [(name: String, value: String)] = []
    for line in lines.dropFirst() {
      guard headers.count < maxHeaderCount else {
        return .failure(.requestHeaderFieldsTooLarge, reason: "more than \(maxHeaderCount) header fields")
      }
      guard let first = line.first, first != UInt8(ascii: " "), first != UInt8(ascii: "\t") else {
        return .failure(.badRequest, reason: "obsolete header line folding")
      }
      guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
        return .failure(.badRequest, reason: "header field without ':'")
      }
      let nameBytes = line[line.startIndex..<colon]
      guard !nameBytes.isEmpty, nameBytes.allSatisfy(isTokenByte) else {
        return .failure(.badRequest, reason: "malformed header name")
      }
      let valueBytes = line[(colon + 1)...]
      guard valueBytes.allSatisfy({ $0 == 9 || ($0 >= 0x20 && $0 != 0x7F) }) else {
        return .failure(.badRequest, reason: "control character in header value")
      }
      let name = String(decoding: nameBytes, as: UTF8.self).lowercased()
      let value = String(decoding: valueBytes, as: UTF8.self).trimmingWhitespace()
      headers.append((name, value))
    }
    var contentLength = 0
    let lengths = headers.filter { $0.name == "content-length" }.map(\.value)
    if let declared = lengths.first {
      guard lengths.allSatisfy({ $0 == declared }), !declared.isEmpty, declared.count <= 18,
        declared.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(declared)
      else {
        return .failure(.badRequest, reason: "invalid Content-Length")
      }
      guard length <= maxBodyBytes else {
        return .failure(.contentTooLarge, reason: "request body larger than \(maxBodyBytes) bytes")
      }
      contentLength = length
    }
    if headers.contains(where: { $0.name == "transfer-encoding" }) {
      return .failure(.notImplemented, reason: "Transfer-Encoding in requests is not supported")
    }
    if minor == 1 && !headers.contains(where: { $0.name == "host" }) {
      return .failure(.badRequest, reason: "HTTP/1.1 request without Host")
    }
    let request = HTTPRequest(
      method: method, path: path, query: query, minorVersion: minor,
      headers: headers, contentLength: contentLength)
    return .request(request, headLength: headEnd.bodyStart)
  }

  /// Where the head's content ends and the body starts: after CRLFCRLF, or LFLF, which
  /// RFC 9112 2.2 lets a recipient accept.
  private static func endOfHead(_ bytes: [UInt8]) -> (contentEnd: Int, bodyStart: Int)? {
    var index = 0
    while index < bytes.count {
      if bytes[index] == UInt8(ascii: "\n") {
        if index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n") {
          return (index, index + 2)
        }
        if index + 2 < bytes.count && bytes[index + 1] == UInt8(ascii: "\r") && bytes[index + 2] == UInt8(ascii: "\n") {
          return (index, index + 3)
        }
      }
      index += 1
    }
    return nil
  }

  private static func split(lines bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
    bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
      line.last == UInt8(ascii: "\r") ? line.dropLast() : line
    }
  }

  /// Origin form (`/metrics?x=1`), absolute form (`http://host/metrics`), or `*`.
  private static func splitTarget(_ target: Substring) -> (String, String)? {
    var target = target
    guard !target.isEmpty, target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
    if target.lowercased().hasPrefix("http://") || target.lowercased().hasPrefix("https://") {
      let afterScheme = target[target.firstRange(of: "//")!.upperBound...]
      target = afterScheme.firstIndex(of: "/").map { afterScheme[$0...] } ?? "/"
    }
    if target == "*" { return ("*", "") }
    guard target.first == "/" else { return nil }
    if let mark = target.firstIndex(of: "?") {
      return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }
    return (String(target), "")
  }

  /// tchar of RFC 9110 5.6.2.
  private static func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    default:
      return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
  }
}
