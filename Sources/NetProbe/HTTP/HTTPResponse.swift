@preconcurrency import Glibc
import FoundationEssentials

/// The status codes this server sends, with their reason phrases.
public struct HTTPStatus: Sendable, Hashable, CustomStringConvertible {
  public let code: Int
  public let reason: String

  public init(_ code: Int, _ reason: String) {
    self.code = code
    self.reason = reason
  }

  public static let ok = HTTPStatus(200, "OK")
  public static let noContent = HTTPStatus(204, "No Content")
  public static let badRequest = HTTPStatus(400, "Bad Request")
  public static let notFound = HTTPStatus(404, "Not Found")
  public static let methodNotAllowed = HTTPStatus(405, "Method Not Allowed")
  public static let requestTimeout = HTTPStatus(408, "Request Timeout")
  public static let contentTooLarge = HTTPStatus(413, "Content Too Large")
  public static let requestHeaderFieldsTooLarge = HTTPStatus(431, "Request Header Fields Too Large")
  public static let internalServerError = HTTPStatus(500, "Internal Server Error")
  public static let notImplemented = HTTPStatus(501, "Not Implemented")
  public static let serviceUnavailable = HTTPStatus(503, "Service Unavailable")
  public static let httpVersionNotSupported = HTTPStatus(505, "HTTP Version Not Supported")

  public var description: String { "\(code) \(reason)" }
}

/// A response as a value: routes build it, the server serialises it.
public struct HTTPResponse: Sendable, Equatable {
  public var status: HTTPStatus
  public var headers: [(name: String, value: String)]
  /// The body in parts, written one after the other: `/metrics` hands over each family's
  /// buffer as it is, so a 38 MB exposition is never copied into one more buffer.
  public var bodyParts: [[UInt8]]
  /// A body made while it is sent (`/metrics`), instead of `bodyParts`: the server sends
  /// it with chunked transfer coding (HTTP/1.1) or until the connection closes (HTTP/1.0).
  public var bodyStream: (any BodyStream)?
  /// Close the connection after this response, whatever the request asked.
  public var closeConnection: Bool

  public init(
    _ status: HTTPStatus, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
    closeConnection: Bool = false
  ) {
    self.init(status, headers: headers, bodyParts: [body], closeConnection: closeConnection)
  }

  public init(
    _ status: HTTPStatus, headers: [(name: String, value: String)] = [], bodyParts: [[UInt8]],
    closeConnection: Bool = false
  ) {
    self.status = status
    self.headers = headers
    self.bodyParts = bodyParts.filter { !$0.isEmpty }
    self.closeConnection = closeConnection
  }

  /// A response whose body is made as it is sent.
  public init(_ status: HTTPStatus, headers: [(name: String, value: String)] = [], stream: any BodyStream) {
    self.init(status, headers: headers, bodyParts: [])
    bodyStream = stream
  }

  /// The whole body in one buffer (a copy when it has several parts).
  public var body: [UInt8] {
    get { bodyParts.count == 1 ? bodyParts[0] : Array(bodyParts.joined()) }
    set { bodyParts = newValue.isEmpty ? [] : [newValue] }
  }

  public var bodyCount: Int { bodyParts.reduce(0) { $0 + $1.count } }

  /// A plain-text response; error bodies say in a sentence what was wrong.
  public static func text(_ status: HTTPStatus, _ text: String, closeConnection: Bool = false) -> HTTPResponse {
    HTTPResponse(
      status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8),
      closeConnection: closeConnection)
  }

  public func header(_ name: String) -> String? {
    headers.first { $0.name.lowercased() == name.lowercased() }?.value
  }

  public static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
    a.status == b.status && a.body == b.body && a.closeConnection == b.closeConnection
      && a.bodyStream === b.bodyStream
      && a.headers.elementsEqual(b.headers, by: { $0.name == $1.name && $0.value == $1.value })
  }

  /// The status line and headers (with Content-Length, and no Date, so that tests can
  /// compare bytes), ending with the empty line. A streamed body has no length:
  /// `Transfer-Encoding: chunked` when `chunked` (HTTP/1.1), else none, and the end of the
  /// body is the end of the connection (HTTP/1.0, which must then not be kept alive).
  public func serializedHead(keepAlive: Bool, chunked: Bool = true) -> [UInt8] {
    var text = "HTTP/1.1 \(status.code) \(status.reason)\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if bodyStream == nil {
      text += "Content-Length: \(bodyCount)\r\n"
    } else if chunked {
      text += "Transfer-Encoding: chunked\r\n"
    }
    text += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
    text += "\r\n"
    return Array(text.utf8)
  }

  /// The bytes on the wire in one buffer, for the server's own small answers (errors,
  /// timeouts): the head, then the body unless `head` (a HEAD request gets no body).
  public func serialized(head: Bool, keepAlive: Bool) -> [UInt8] {
    head ? serializedHead(keepAlive: keepAlive) : serializedHead(keepAlive: keepAlive) + body
  }

  /// Compresses the body with gzip when the client accepts it and it is worth it (bodies
  /// under 1 KiB gain nothing). Adds `Content-Encoding` and `Vary`.
  public func compressedIfAccepted(by request: HTTPRequest) -> HTTPResponse {
    if let bodyStream {
      // A streamed body is compressed as it streams; its size is not known, but such
      // bodies are the large ones. It is made on a thread of its own, so that the making
      // and the compression overlap (see PrefetchedBody).
      guard header("content-encoding") == nil, HTTPResponse.acceptsGzip(request.header("accept-encoding")),
        let compressed = GzipStream(PrefetchedBody.ahead(bodyStream, threadName: "http-body-plain"))
      else { return self }
      var copy = self
      copy.bodyStream = compressed
      copy.headers.append(("Content-Encoding", "gzip"))
      copy.headers.append(("Vary", "Accept-Encoding"))
      return copy
    }
    guard bodyCount >= 1024, header("content-encoding") == nil,
      HTTPResponse.acceptsGzip(request.header("accept-encoding")),
      let compressed = Gzip.compress(parts: bodyParts)
    else { return self }
    var copy = self
    copy.body = compressed
    copy.headers.append(("Content-Encoding", "gzip"))
    copy.headers.append(("Vary", "Accept-Encoding"))
    return copy
  }

  /// Reads `Accept-Encoding` (RFC 9110 12.5.3): gzip (or x-gzip) or `*` with a q-value
  /// above zero, unless gzip itself is listed with q=0.
  static func acceptsGzip(_ header: String?) -> Bool {
    guard let header else { return false }
    var wildcard = false
    for item in header.split(separator: ",") {
      let parts = item.split(separator: ";").map { $0.trimmingWhitespace().lowercased() }
      guard let coding = parts.first else { continue }
      var quality = 1.0
      for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
        quality = Double(parameter.dropFirst(2)) ?? 0
      }
      if coding == "gzip" || coding == "x-gzip" { return quality > 0 }
      if coding == "*" { wildcard = quality > 0 }
    }
    return wildcard
  }
}
