/// A body made a piece at a time by the one who sends it: the HTTP loop pulls the next
/// piece only once the previous one is in the kernel, and the push client when libcurl
/// asks for more, so a slow reader holds one piece, never the whole body. Used by one
/// thread at a time.
public protocol BodyStream: AnyObject, Sendable {
  /// The next piece (never empty), nil once the body is complete.
  func next() -> [UInt8]?

  /// True when the pieces are made on threads of their own, ahead of the reader (then a
  /// `PrefetchedBody` around it would only add a thread).
  var isMadeAhead: Bool { get }
}

extension BodyStream {
  public var isMadeAhead: Bool { false }
}

/// HTTP/1.1 chunked transfer coding (RFC 9112 7.1) around another stream: each piece
/// becomes one chunk, and the end the last chunk `0` with no trailer. `nextParts` gives
/// the chunk as its size line, the piece as it is and the closing CRLF, so the piece is
/// never copied into a framed buffer.
final class ChunkedBody: BodyStream, @unchecked Sendable {
  private let source: any BodyStream
  /// True once the last chunk has been given.
  private(set) var ended = false
  private static let crlf = Array("\r\n".utf8)

  init(_ source: any BodyStream) { self.source = source }

  func next() -> [UInt8]? {
    nextParts().map { Array($0.joined()) }
  }

  /// The next chunk in its three parts; the last chunk alone; nil after it.
  func nextParts() -> [[UInt8]]? {
    guard !ended else { return nil }
    guard let piece = source.next() else {
      ended = true
      return [Array("0\r\n\r\n".utf8)]
    }
    return [Array((String(piece.count, radix: 16) + "\r\n").utf8), piece, Self.crlf]
  }
}

/// A body already in memory, given one buffer at a time (empty buffers skipped).
final class BufferedBody: BodyStream, @unchecked Sendable {
  private var pieces: [[UInt8]]

  init(_ pieces: [[UInt8]]) { self.pieces = pieces.filter { !$0.isEmpty }.reversed() }

  func next() -> [UInt8]? { pieces.popLast() }
}
