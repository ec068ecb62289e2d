import Dispatch
import Synchronization

/// The pieces between a producer and its reader: a bounded queue, whose end is a nil piece.
final class PieceQueue: Sendable {
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
