import Synchronization

/// Answers on the UDP tracer's error queues that named no probe in flight, by family and
/// reason: counted (a forged or garbled answer is never taken for a hop), rendered by the
/// path engine as `netprobe_path_packets_unexpected_total`.
final class TraceUnexpectedAnswers: Sendable {
  struct Key: Hashable, Comparable {
    var family: IPAddress.Family
    var problem: TraceAnswerProblem

    static func < (a: Key, b: Key) -> Bool { (a.family.rawValue, a.problem.rawValue) < (b.family.rawValue, b.problem.rawValue) }
  }

  private let counts = Mutex<[Key: UInt64]>([:])

  func record(_ family: IPAddress.Family, _ problem: TraceAnswerProblem) {
    counts.withLock { $0[Key(family: family, problem: problem), default: 0] += 1 }
  }

  /// The counts so far, in a stable order.
  func snapshot() -> [(key: Key, count: UInt64)] {
    counts.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
  }
}
