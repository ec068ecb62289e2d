/// The probes a target has in flight and recently decided, so that every reply is
/// classified exactly once: in time, late (after its deadline), a duplicate, or not ours.
///
/// Pure: times are passed in. A ring of recent probes indexed by sequence keeps it O(1).
public struct ProbeLedger: Sendable {
  enum State: Sendable, Equatable {
    case pending
    case received
    case lost
    /// Lost, then answered late; any further reply is a duplicate.
    case lostThenAnswered
  }

  /// 24 bytes: ten thousand targets keep their ledgers in a few megabytes.
  struct Entry: Sendable {
    var sendTime: Int64
    var deadline: Int64
    var sequence: UInt32
    var state: State
    /// An empty slot: no probe has used it yet.
    var isUsed: Bool
  }

  private var entries: [Entry]
  public private(set) var nextSequence: UInt32 = 0

  /// `capacity` must cover the probes that can be in flight at once (timeout / interval)
  /// with room to recognise late replies.
  public init(capacity: Int) {
    entries = [Entry](
      repeating: Entry(sendTime: 0, deadline: 0, sequence: 0, state: .pending, isUsed: false),
      count: max(8, capacity))
  }

  /// Ring entries: how many recent probes it tells apart.
  public var capacity: Int { entries.count }

  /// Widens the ring (a reload raised timeout / interval) keeping every probe it holds, so
  /// a reply to a probe sent before the reload is still matched once.
  public mutating func grow(to capacity: Int) {
    guard capacity > entries.count else { return }
    var grown = [Entry](repeating: Entry(sendTime: 0, deadline: 0, sequence: 0, state: .pending, isUsed: false), count: capacity)
    for entry in entries where entry.isUsed {
      let index = Int(entry.sequence % UInt32(capacity))
      // Only at the wrap of the 32-bit sequence can two land on one entry: keep the newer.
      if grown[index].isUsed && nextSequence &- grown[index].sequence < nextSequence &- entry.sequence { continue }
      grown[index] = entry
    }
    entries = grown
  }

  /// Registers a probe about to be sent; returns its sequence. An older probe in the same
  /// ring slot that was still pending is returned as lost.
  public mutating func send(sendTime: Int64, deadline: Int64) -> (sequence: UInt32, evictedPending: Bool) {
    let sequence = nextSequence
    nextSequence &+= 1
    let index = Int(sequence % UInt32(entries.count))
    let evicted = entries[index].isUsed && entries[index].state == .pending
    entries[index] = Entry(sendTime: sendTime, deadline: deadline, sequence: sequence, state: .pending, isUsed: true)
    return (sequence, evicted)
  }

  /// Marks the probe lost if it is still pending at its deadline; true when it was.
  public mutating func expire(sequence: UInt32, now: Int64) -> Bool {
    let index = Int(sequence % UInt32(entries.count))
    var entry = entries[index]
    guard entry.isUsed, entry.sequence == sequence, entry.state == .pending, entry.deadline <= now else {
      return false
    }
    entry.state = .lost
    entries[index] = entry
    return true
  }

  public enum Reply: Sendable, Equatable {
    /// Answered before its deadline.
    case inTime(rttNanoseconds: Int64)
    /// Answered after its deadline. `newlyLost`: the deadline had passed but the probe had
    /// not been expired yet, so the loss must be recorded now.
    case late(newlyLost: Bool)
    case duplicate
    /// A sequence we never sent, or a send time that does not match what we sent: forged
    /// or corrupted.
    case notOurs
  }

  /// Classifies a reply that carries our nonce, for `sequence` sent at `sendTime`,
  /// received at `receiveTime` (REALTIME ns) and handled at `now` (MONOTONIC ns).
  public mutating func reply(sequence: UInt32, sendTime: Int64, receiveTime: Int64, now: Int64) -> Reply {
    let index = Int(sequence % UInt32(entries.count))
    var entry = entries[index]
    guard entry.isUsed, entry.sequence == sequence else {
      // Older than the ring remembers, but below what we have sent: a very late reply.
      let age = nextSequence &- sequence
      return age > 0 && age <= UInt32.max / 2 ? .late(newlyLost: false) : .notOurs
    }
    guard entry.sendTime == sendTime else { return .notOurs }
    switch entry.state {
    case .pending where now <= entry.deadline:
      entry.state = .received
      entries[index] = entry
      return .inTime(rttNanoseconds: max(0, receiveTime - sendTime))
    case .pending:
      entry.state = .lostThenAnswered
      entries[index] = entry
      return .late(newlyLost: true)
    case .lost:
      entry.state = .lostThenAnswered
      entries[index] = entry
      return .late(newlyLost: false)
    case .received, .lostThenAnswered:
      return .duplicate
    }
  }
}
