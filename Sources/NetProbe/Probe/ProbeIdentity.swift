import Synchronization

/// What marks the probes of this process, shared by the ping engine and the path tracer:
/// the per-process nonce in every payload, and the ICMP identifier, which is replaced every
/// `identifier_rotation` so that a long-lived identifier cannot be singled out on the wire.
///
/// Both engines' identifiers come from the same random number, the tracer's with
/// `ProbePayload.traceIdentifierBit` set: they rotate together and never meet.
public final class ProbeIdentity: Sendable {
  /// Random per process: replies carrying another nonce are not ours.
  let nonce: UInt64
  /// The identifier in use and the one before it (rotation keeps the old one valid for the
  /// replies still in flight), packed as previous << 16 | current, trace bit clear.
  private let identifiers: Atomic<UInt32>
  /// The rotation interval in ns, 0 for none.
  private let rotationInterval = Atomic<Int64>(0)
  /// When the next rotation is due (monotonic ns), `Int64.max` for never.
  private let nextRotation = Atomic<Int64>(.max)

  public init() {
    nonce = UInt64.random(in: 1...UInt64.max)
    let first = UInt32(Self.randomIdentifier())
    identifiers = Atomic(first << 16 | first)
  }

  /// The ping engine's identifiers: (current, previous).
  var pingIdentifiers: (UInt16, UInt16) {
    let packed = identifiers.load(ordering: .relaxed)
    return (UInt16(packed & 0xFFFF), UInt16(packed >> 16))
  }

  /// The path tracer's identifiers: the ping engine's with the trace bit set.
  var traceIdentifiers: (UInt16, UInt16) {
    let (current, previous) = pingIdentifiers
    return (current | ProbePayload.traceIdentifierBit, previous | ProbePayload.traceIdentifierBit)
  }

  /// Picks a new random identifier, keeping the current one as the previous.
  func rotate() {
    let current = identifiers.load(ordering: .relaxed) & 0xFFFF
    var next = UInt32(Self.randomIdentifier())
    while next == current { next = UInt32(Self.randomIdentifier()) }
    identifiers.store(current << 16 | next, ordering: .relaxed)
  }

  /// Rotates every `interval` from `now` on (monotonic ns), or never (nil).
  func setRotation(every interval: Duration?, now: Int64) {
    let nanoseconds = interval.map(\.nanoseconds) ?? 0
    rotationInterval.store(nanoseconds, ordering: .relaxed)
    nextRotation.store(nanoseconds > 0 ? now + nanoseconds : .max, ordering: .relaxed)
  }

  /// Rotates when a rotation is due at `now`; returns when the next one is (nil: none
  /// configured). Every ping loop keeps a timer for it; whichever fires first rotates, once.
  @discardableResult
  func rotateIfDue(now: Int64) -> Int64? {
    let due = nextRotation.load(ordering: .relaxed)
    let interval = rotationInterval.load(ordering: .relaxed)
    guard due != .max, interval > 0 else { return nil }
    guard due <= now else { return due }
    let following = max(due + interval, now + 1)
    if nextRotation.compareExchange(expected: due, desired: following, ordering: .relaxed).exchanged { rotate() }
    return nextRotation.load(ordering: .relaxed)
  }

  private static func randomIdentifier() -> UInt16 { UInt16.random(in: 1..<ProbePayload.traceIdentifierBit) }
}
