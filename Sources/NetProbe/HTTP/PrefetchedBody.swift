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
}

/// The pieces between a producer and its reader: a bounded queue, whose end is a nil piece.
private final class PieceQueue: Sendable {
  private struct State {
    var pieces: [[UInt8]?] = []
    var ended = false
    var cancelled = false
  }
  private let state = Mutex(State())
  /// Free places, and ready pieces. Made at 0 and raised, as libdispatch will not free a
  /// semaphore whose count is below the one it was made with.
  private let room = DispatchSemaphore(value: 0)
  private let ready = DispatchSemaphore(value: 0)

  init(depth: Int) {
    precondition(depth > 0, "a prefetch holds at least one piece")
    for _ in 0..<depth { room.signal() }
  }

  /// The producer waits for a free place; false once the reader is gone.
  func waitForRoom() -> Bool {
    room.wait()
    return !state.withLock { $0.cancelled }
  }

  func put(_ piece: [UInt8]?) {
    state.withLock { $0.pieces.append(piece) }
    ready.signal()
  }

  /// The next piece, waiting for it; nil at the end (and after it).
  func take() -> [UInt8]? {
    if state.withLock({ $0.ended }) { return nil }
    ready.wait()
    let piece = state.withLock { state in
      let piece = state.pieces.removeFirst()
      if piece == nil { state.ended = true }
      return piece
    }
    room.signal()
    return piece
  }

  func cancel() {
    state.withLock { $0.cancelled = true }
    room.signal()
  }
}
