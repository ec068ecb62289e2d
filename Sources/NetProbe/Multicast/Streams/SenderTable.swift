/// The state a stream keeps per sender it tells apart in the payload (a beacon's sender and
/// stream id, an RTP SSRC): a sequence of its own and a jitter of its own.
protocol TrackedSender: Sendable {
  init(key: UInt64)
  var key: UInt64 { get }
  var tracker: SequenceTracker { get set }
  /// The sender's jitter estimate in seconds; nil until it means something.
  var jitterSeconds: Double? { get }
  /// CLOCK_REALTIME ns of the sender's last packet.
  var lastArrival: Int64 { get }
  /// After a pause in reception: sequence and jitter start again.
  mutating func resume()
}

/// The senders heard on one stream, each with a sequence and a jitter of its own, so that
/// several senders on one group are never mixed into one sequence (which would read as a
/// restart or a gap at every packet).
///
/// - At most 64 are kept; a new one replaces the least recently heard. Its counters are
///   kept in `retired` (its open holes counted lost first, as they can no longer arrive),
///   so the stream's sums never go down when a sender is dropped.
/// - The table grows only when a new sender appears (at most 64 times), never per packet.
/// - Jitter: the largest estimate among the senders heard within 10 s before the stream's
///   last packet — the worst path is what an alert wants, and a sender that went silent
///   stops counting instead of holding its last value for ever. Measured from the last
///   packet rather than the latest time seen, so a wall clock stepped back does not make
///   every sender look silent until it catches up.
/// - A sender that falls silent keeps its last (at most 64) undecided numbers pending until
///   it is dropped from the table, or the whole stream is declared silent (`settle`).
struct SenderTable<Sender: TrackedSender>: Sendable {
  static var capacity: Int { 64 }
  static var jitterFreshnessNanoseconds: Int64 { 10_000_000_000 }

  private var senders: [Sender] = []
  /// When each sender was last heard, in `uses` ticks: the least recent is dropped first.
  private var lastUse: [UInt64] = []
  private var retired = SequenceCounts()
  private var uses: UInt64 = 0
  private var lastArrival: Int64 = 0
  /// The sender of the last packet: checked first, as packets come in runs per sender.
  private var recent = 0

  /// Senders in the table.
  var count: Int { senders.count }

  /// Records a packet of the sender `key`, received at `arrival`, through `body`, which
  /// gets the sender's state (fresh when the sender is new to the table) and whether it is.
  mutating func record<Result>(_ key: UInt64, arrival: Int64, _ body: (inout Sender, _ isNew: Bool) -> Result) -> Result {
    let (index, isNew) = slot(for: key)
    uses &+= 1
    lastUse[index] = uses
    lastArrival = arrival
    recent = index
    return body(&senders[index], isNew)
  }

  /// Decides the open holes of every sender but `key`'s: counted lost now, as when a sender
  /// is dropped (for a sender replaced by a restarted one, they can no longer arrive).
  mutating func closeOut(except key: UInt64) {
    for index in senders.indices where senders[index].key != key { senders[index].tracker.closeOut() }
  }

  /// The sender `key`'s state; nil when it is not in the table. Changes nothing.
  func sender(_ key: UInt64) -> Sender? {
    if recent < senders.count && senders[recent].key == key { return senders[recent] }
    return senders.first { $0.key == key }
  }

  /// The stream fell silent: every sender's holes still undecided (its last 64 numbers)
  /// are counted lost now rather than when, if ever, it is heard again.
  mutating func settle() {
    for index in senders.indices { senders[index].tracker.closeOut() }
  }

  /// After a pause in reception, every sender's sequence and jitter start again.
  mutating func resume() {
    for index in senders.indices { senders[index].resume() }
  }

  /// The counters of every sender heard, those dropped from the table included.
  var counts: SequenceCounts {
    senders.reduce(retired) { $0 + $1.tracker.counts }
  }

  var jitterSeconds: Double? {
    var worst: Double?
    for sender in senders where lastArrival.difference(from: sender.lastArrival) <= Double(Self.jitterFreshnessNanoseconds) {
      if let value = sender.jitterSeconds { worst = max(worst ?? value, value) }
    }
    return worst
  }

  private mutating func slot(for key: UInt64) -> (index: Int, isNew: Bool) {
    if recent < senders.count, senders[recent].key == key { return (recent, false) }
    if let index = senders.firstIndex(where: { $0.key == key }) { return (index, false) }
    if senders.count < Self.capacity {
      senders.append(Sender(key: key))
      lastUse.append(0)
      return (senders.count - 1, true)
    }
    var oldest = 0
    for index in lastUse.indices where lastUse[index] < lastUse[oldest] { oldest = index }
    // The dropped sender's holes can no longer arrive late: they are lost.
    senders[oldest].tracker.closeOut()
    retired += senders[oldest].tracker.counts
    senders[oldest] = Sender(key: key)
    return (oldest, true)
  }
}
