import CNetShims

/// gzip through ISA-L's igzip (in the C shim: its stream state is a large C struct). Level 1
/// of igzip's 0–3: an exposition shrinks about fifteenfold at about 500 MB/s, five times
/// zlib level 1's speed, which was most of a compressed scrape's time.
public enum Gzip {
  public static func compress(_ input: [UInt8], level: Int32 = 1) -> [UInt8]? {
    compress(parts: [input], level: level)
  }

  /// One gzip stream over `parts` in order, as if they were one buffer.
  public static func compress(parts: [[UInt8]], level: Int32 = 1) -> [UInt8]? {
    guard let stream = GzipStream(BufferedBody(parts), level: level) else { return nil }
    var output: [UInt8] = []
    while let piece = stream.next() { output += piece }
    return stream.failed ? nil : output
  }
}

/// gzip over a stream: each piece the source gives is deflated as it comes, and a piece of
/// compressed output is handed on once it holds `pieceBytes` (or the source has ended), so
/// neither the plain body nor the compressed one is ever held whole.
public final class GzipStream: BodyStream, @unchecked Sendable {
  /// Compressed bytes gathered before a piece is handed on: about ten plain pieces.
  static let pieceBytes = 32 << 10

  private let source: any BodyStream
  private var deflater: OpaquePointer?
  private var ended = false
  /// igzip failed (out of memory): the body is cut short, and the caller can tell.
  public private(set) var failed = false

  public init?(_ source: any BodyStream, level: Int32 = 1) {
    guard let deflater = cns_gzip_begin(level) else { return nil }
    self.source = source
    self.deflater = OpaquePointer(deflater)
  }

  deinit {
    if let deflater { cns_gzip_end(UnsafeMutableRawPointer(deflater)) }
  }

  public func next() -> [UInt8]? {
    guard !ended, let deflater else { return nil }
    var output: [UInt8] = []
    while output.count < Self.pieceBytes {
      guard let piece = source.next() else {
        deflate(deflater, [], finish: true, into: &output)
        ended = true
        cns_gzip_end(UnsafeMutableRawPointer(deflater))
        self.deflater = nil
        break
      }
      deflate(deflater, piece, finish: false, into: &output)
      if failed { break }
    }
    if failed {
      ended = true
      return nil
    }
    return output.isEmpty ? nil : output
  }

  /// Runs deflate over `input` until igzip has taken all of it (and, with `finish`, ended
  /// the stream), appending what it writes.
  private func deflate(_ deflater: OpaquePointer, _ input: [UInt8], finish: Bool, into output: inout [UInt8]) {
    var offset = 0
    var streamEnded = false
    input.withUnsafeBufferPointer { source in
      repeat {
        let room = max(16 << 10, (source.count - offset) / 2 + 64)
        let start = output.count
        var written = 0
        var consumed = 0
        output.append(contentsOf: repeatElement(0, count: room))
        let rc = output.withUnsafeMutableBufferPointer { destination in
          cns_gzip_step(
            UnsafeMutableRawPointer(deflater), source.baseAddress.map { $0 + offset }, source.count - offset, &consumed,
            destination.baseAddress! + start, room, finish ? 1 : 0, &written)
        }
        output.removeLast(room - written)
        offset += consumed
        if rc < 0 {
          failed = true
          return
        }
        streamEnded = rc == 1
      } while offset < source.count || (finish && !streamEnded)
    }
  }
}
