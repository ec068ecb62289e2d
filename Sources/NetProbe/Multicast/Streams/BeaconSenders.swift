/// The beacon senders heard on one group, each (sender id, stream id) with a sequence
/// and a jitter of its own: agents on several hosts may beacon to one group, and their
/// sequences must not be mixed. The table's bounds, sums and jitter are `SenderTable`'s.
///
/// A restarted sender sends its sequence from 0 again, which would read as duplicates or
/// late packets for its first 1024. A packet that is behind but sent later than anything
/// seen from that sender is therefore a reset; a real late or duplicate packet was sent
/// earlier. (Forward jumps tolerate 100,000 numbers, 2.8 h at the default 10 packets/s: a
/// beacon's 64-bit sequence does not wrap, so a long outage is loss.)
struct BeaconSenders: Sendable {
  static let maxForwardJump: UInt64 = 100_000

  struct Sender: TrackedSender {
    let key: UInt64
    var tracker = SequenceTracker(width: 64, maxForwardJump: BeaconSenders.maxForwardJump)
    var jitter = RTPJitter(clockRate: 1_000_000_000)
    var newestSendTime = Int64.min
    var lastArrival: Int64 = 0

    init(key: UInt64) { self.key = key }

    var jitterSeconds: Double? { jitter.seconds }

    mutating func resume() {
      tracker.resume()
      jitter.reset()
    }

    @discardableResult
    mutating func record(_ beacon: BeaconPayload, arrival: Int64, hostDropped: UInt64) -> SequenceEvent {
      let event: SequenceEvent
      if tracker.highestSequence != nil, !tracker.advances(beacon.sequence), beacon.sendTimeNanoseconds > newestSendTime {
        event = tracker.restart(at: beacon.sequence)
      } else {
        event = tracker.record(beacon.sequence, hostDropped: hostDropped)
      }
      if event == .reset {
        jitter.reset()
        newestSendTime = beacon.sendTimeNanoseconds
      } else {
        newestSendTime = max(newestSendTime, beacon.sendTimeNanoseconds)
      }
      jitter.record(arrival: arrival, senderTime: beacon.sendTimeNanoseconds)
      lastArrival = arrival
      return event
    }
  }

  private var senders = SenderTable<Sender>()

  /// Senders in the table.
  var count: Int { senders.count }

  /// After a pause in reception, every sender's sequence and jitter start again.
  mutating func resume() { senders.resume() }

  /// The stream fell silent: every sender's holes still undecided are lost.
  mutating func settle() { senders.settle() }

  /// `hostDropped` (the socket's drops just before this packet) goes to this packet's
  /// sender: exact when one sender feeds the group, a guess when several interleave.
  /// Returns what the beacon's number was to its sender's sequence.
  @discardableResult
  mutating func record(_ beacon: BeaconPayload, arrival: Int64, hostDropped: UInt64 = 0) -> SequenceEvent {
    let key = UInt64(beacon.senderID) << 32 | UInt64(beacon.streamID)
    return senders.record(key, arrival: arrival) { sender, _ in sender.record(beacon, arrival: arrival, hostDropped: hostDropped) }
  }

  /// The counters of every sender heard, those dropped from the table included.
  var counts: SequenceCounts { senders.counts }

  var jitterSeconds: Double? { senders.jitterSeconds }
}
