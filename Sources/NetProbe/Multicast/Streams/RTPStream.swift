/// What is known of the RTP traffic received on a group: per SSRC its sequence and its
/// interarrival jitter (RFC 3550 keeps both per source), in a bounded `SenderTable`.
///
/// Several SSRCs on one group (senders sharing an any-source group, or one sender with
/// several sources) are each tracked apart, so their interleaved packets are neither gaps
/// nor restarts. An SSRC heard for the first time after the stream's first is an SSRC
/// change (RFC 3550 8.2: a restarted sender picks a new random SSRC): it counts one reset,
/// its own numbers start a sequence of their own, and the other SSRCs' open holes are
/// decided (lost) then, as a restarted sender's can no longer arrive — whether the old
/// SSRC stopped (a restart) or goes on (a second sender, counted once). Counters carry on.
///
/// Jitter uses the group's configured `clock_rate` when set (the operator's word beats
/// the table, e.g. for a static type misused), else the payload type's static rate;
/// packets with neither (a dynamic type, say telephone events) do not feed it. A change
/// of rate restarts the SSRC's estimate, as timestamps in different clocks cannot be
/// compared. The stream's figure is the worst of the SSRCs heard within the last 10 s.
struct RTPStream: Sendable {
  struct Source: TrackedSender {
    let key: UInt64
    var tracker = SequenceTracker(width: 16)
    var jitter: RTPJitter?
    var lastArrival: Int64 = 0

    init(key: UInt64) { self.key = key }

    var jitterSeconds: Double? { jitter?.seconds }

    mutating func resume() {
      tracker.resume()
      jitter?.reset()
    }
  }

  private var sources = SenderTable<Source>()
  /// SSRCs heard after the first, counted as resets.
  private var ssrcChanges: UInt64 = 0
  private var heardAny = false
  private let configuredClockRate: Int?

  init(clockRate: Int?) {
    configuredClockRate = clockRate.flatMap { $0 > 0 ? $0 : nil }
  }

  var jitterSeconds: Double? { sources.jitterSeconds }

  /// Every SSRC's counters, with the SSRC changes as resets.
  var counts: SequenceCounts {
    var counts = sources.counts
    counts.resets &+= ssrcChanges
    return counts
  }

  /// SSRCs in the table.
  var sourceCount: Int { sources.count }

  /// After a pause in reception: sequences and jitter start again (the pause is no gap, and
  /// its length no transit difference).
  mutating func resume() { sources.resume() }

  /// The stream fell silent: the holes still undecided are lost.
  mutating func settle() { sources.settle() }

  /// True when `ssrc` was not heard before and another was: a restarted sender. Changes nothing.
  func isNewSource(_ ssrc: UInt32) -> Bool {
    heardAny && sources.sender(UInt64(ssrc)) == nil
  }

  /// True when `packet` is the next number of its SSRC, or the SSRC's first: the datagram
  /// follows the one before it in the stream. Changes nothing.
  func follows(_ packet: RTPPacket) -> Bool {
    guard let highest = sources.sender(UInt64(packet.ssrc))?.tracker.highestSequence else { return true }
    return UInt16(truncatingIfNeeded: highest) &+ 1 == packet.sequence
  }

  /// Returns what the packet's number was to its SSRC's sequence.
  @discardableResult
  mutating func record(_ packet: RTPPacket, arrival: Int64, hostDropped: UInt64 = 0) -> SequenceEvent {
    let rate = configuredClockRate ?? RTPPacket.clockRate(payloadType: packet.payloadType)
    let (isNew, event) = sources.record(UInt64(packet.ssrc), arrival: arrival) { source, isNew -> (Bool, SequenceEvent) in
      let event = source.tracker.record(UInt64(packet.sequence), hostDropped: hostDropped)
      source.lastArrival = arrival
      if let rate {
        if source.jitter?.clockRate != rate { source.jitter = RTPJitter(clockRate: rate) }
        source.jitter?.record(arrival: arrival, timestamp: packet.timestamp)
      }
      return (isNew, event)
    }
    if isNew && heardAny {
      ssrcChanges &+= 1
      sources.closeOut(except: UInt64(packet.ssrc))
    }
    heardAny = true
    return event
  }
}
