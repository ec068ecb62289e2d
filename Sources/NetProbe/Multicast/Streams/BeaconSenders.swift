/// The beacon senders heard on one group, each (sender id, stream id) with a sequence
/// and a jitter of its own: agents on several hosts may beacon to one group, and their
/// sequences must not be mixed.
///
/// - At most 64 are kept; a new one replaces the least recently heard. Its counters are
///   kept in `retired`, so the group's sums never go down when a sender is dropped.
/// - The table grows only when a new sender appears (at most 64 times), never per packet.
/// - Jitter: the largest estimate among the senders heard within 10 s before the group's
///   last packet — the worst path is what an alert wants, and a sender that went silent
///   stops counting instead of holding its last value for ever. Measured from the last
///   packet rather than the latest time seen, so a wall clock stepped back does not
///   make every sender look silent until it catches up.
/// - A restarted sender sends its sequence from 0 again, which would read as duplicates or
///   late packets for its first 1024. A packet that is behind but sent later than anything
///   seen from that sender is therefore a reset; a real late or duplicate packet was
///   sent earlier. (Forward jumps tolerate 100,000 numbers, 2.8 h at the default 10
///   packets/s: a beacon's 64-bit sequence does not wrap, so a long outage is loss.)
struct BeaconSenders: Sendable {
  static let capacity = 64
  static let maxForwardJump: UInt64 = 100_000
  static let jitterFreshnessNanoseconds: Int64 = 10_000_000_000

  private struct Sender: Sendable {
    var key: UInt64
    var tracker = SequenceTracker(width: 64, maxForwardJump: BeaconSenders.maxForwardJump)
    var jitter = RTPJitter(clockRate: 1_000_000_000)
    var newestSendTime = Int64.min
    var lastArrival: Int64 = 0
    var lastUse: UInt64 = 0

    init(key: UInt64) { self.key = key }

    mutating func resume() {
      tracker.resume()
      jitter.reset()
    }

    mutating func record(_ beacon: BeaconPayload, arrival: Int64, hostDropped: UInt64) {
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
    }
  }

  private var senders: [Sender] = []
  private var retired = SequenceCounts()
  private var uses: UInt64 = 0
  private var lastArrival: Int64 = 0
  /// The sender of the last packet: checked first, as packets come in runs per sender.
  private var recent = 0

  /// Senders in the table.
  var count: Int { senders.count }

  /// After a pause in reception, every sender's sequence and jitter start again.
  mutating func resume() {
    for index in senders.indices { senders[index].resume() }
  }

  /// `hostDropped` (the socket's drops just before this packet) goes to this packet's
  /// sender: exact when one sender feeds the group, a guess when several interleave.
  mutating func record(_ beacon: BeaconPayload, arrival: Int64, hostDropped: UInt64 = 0) {
    let key = UInt64(beacon.senderID) << 32 | UInt64(beacon.streamID)
    let index = slot(for: key)
    uses &+= 1
    senders[index].lastUse = uses
    senders[index].record(beacon, arrival: arrival, hostDropped: hostDropped)
    lastArrival = arrival
    recent = index
  }

  /// The counters of every sender heard, those dropped from the table included.
  var counts: SequenceCounts {
    senders.reduce(retired) { $0 + $1.tracker.counts }
  }

  var jitterSeconds: Double? {
    var worst: Double?
    for sender in senders where lastArrival.difference(from: sender.lastArrival) <= Double(Self.jitterFreshnessNanoseconds) {
      if let value = sender.jitter.seconds { worst = max(worst ?? value, value) }
    }
    return worst
  }

  private mutating func slot(for key: UInt64) -> Int {
    if recent < senders.count, senders[recent].key == key { return recent }
    if let index = senders.firstIndex(where: { $0.key == key }) { return index }
    if senders.count < Self.capacity {
      senders.append(Sender(key: key))
      return senders.count - 1
    }
    var oldest = 0
    for index in senders.indices where senders[index].lastUse < senders[oldest].lastUse { oldest = index }
    // The dropped sender's holes can no longer arrive late: they are lost.
    senders[oldest].tracker.closeOut()
    retired += senders[oldest].tracker.counts
    senders[oldest] = Sender(key: key)
    return oldest
  }
}
