@preconcurrency import Glibc
import Dispatch
import Synchronization
import Testing

@testable import NetProbe

/// A source that counts the pieces asked of it, and can be made slow.
private final class CountingSource: BodyStream, @unchecked Sendable {
  let total: Int
  let made = Atomic<Int>(0)
  let delayMicroseconds: UInt32

  init(total: Int, delayMicroseconds: UInt32 = 0) {
    self.total = total
    self.delayMicroseconds = delayMicroseconds
  }

  func next() -> [UInt8]? {
    let index = made.load(ordering: .relaxed)
    guard index < total else { return nil }
    if delayMicroseconds > 0 { usleep(delayMicroseconds) }
    made.store(index + 1, ordering: .relaxed)
    return [UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: index >> 8)]
  }
}

@Suite struct PrefetchedBodyTests {
  @Test func givesEveryPieceInOrderThenNil() {
    let body = PrefetchedBody(CountingSource(total: 1000))
    var index = 0
    while let piece = body.next() {
      #expect(piece == [UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: index >> 8)])
      index += 1
    }
    #expect(index == 1000)
    #expect(body.next() == nil)
  }

  @Test func makesAtMostDepthPiecesAheadOfTheReader() throws {
    let source = CountingSource(total: 100)
    let body = PrefetchedBody(source, depth: 3)
    // The producer runs ahead until the queue is full, then waits for the reader.
    try waitUntil { source.made.load(ordering: .relaxed) == 3 }
    usleep(50_000)
    #expect(source.made.load(ordering: .relaxed) == 3)
    _ = body.next()
    try waitUntil { source.made.load(ordering: .relaxed) == 4 }
    usleep(50_000)
    #expect(source.made.load(ordering: .relaxed) == 4)
  }

  @Test func droppingTheBodyStopsTheProducer() throws {
    let source = CountingSource(total: 1_000_000, delayMicroseconds: 100)
    var body: PrefetchedBody? = PrefetchedBody(source, depth: 2)
    _ = body?.next()
    body = nil
    // At most the piece being made when the reader went, and the one it had room for.
    usleep(100_000)
    let stopped = source.made.load(ordering: .relaxed)
    #expect(stopped <= 4)
    usleep(100_000)
    #expect(source.made.load(ordering: .relaxed) == stopped)
  }

  @Test func anEmptySourceEndsAtOnce() {
    #expect(PrefetchedBody(CountingSource(total: 0)).next() == nil)
  }
}

/// Polls `condition` for up to two seconds.
private func waitUntil(_ condition: () -> Bool) throws {
  let deadline = DispatchTime.now() + .seconds(2)
  while !condition() {
    if DispatchTime.now() > deadline { throw WaitTimedOut() }
    usleep(1000)
  }
}

private struct WaitTimedOut: Error {}
