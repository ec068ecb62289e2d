import Dispatch
import Synchronization

/// A body made on a thread of its own, a few pieces ahead of its reader.
///
/// Encoding 10,000 targets' samples and compressing them take most of a scrape; made on the
/// thread that sends them, the encoding, the compression and the send happen one after the
/// other on one core. Each stage behind a `PrefetchedBody` runs on its own thread instead
/// (the text encoder, then gzip, then the HTTP loop's send), so on two cores they overlap,
/// and the loop is free between pieces for its other connections. At most `depth` pieces
/// wait, so the body in memory stays a few pieces, as it does unprefetched.
///
/// `next()` waits for the producer when it has not kept up; dropping the body (a client
/// gone) stops the producer after the piece it is making.
public final class PrefetchedBody: BodyStream, @unchecked Sendable {
  /// Pieces made ahead: enough to cover a scheduling delay of either side.
  public static let defaultDepth = 4

  private let queue: PieceQueue

  /// Starts making `source`'s pieces on a new thread named `threadName`.
  public init(_ source: any BodyStream, depth: Int = defaultDepth, threadName: String = "body-prefetch") {
    let queue = PieceQueue(depth: depth)
    self.queue = queue
    SystemThread.start(name: threadName) {
      while queue.waitForRoom() {
        let piece = source.next()
        queue.put(piece)
        if piece == nil { return }
      }
    }
  }

  deinit { queue.cancel() }

  public func next() -> [UInt8]? { queue.take() }

  public var isMadeAhead: Bool { true }

  /// `source` made ahead: itself if it already is.
  public static func ahead(_ source: any BodyStream, threadName: String) -> any BodyStream {
    source.isMadeAhead ? source : PrefetchedBody(source, threadName: threadName)
  }
}
