/// What is known of the RTP session received on a group: the sequence of its current
/// SSRC and its interarrival jitter.
///
/// A new SSRC is a new sender (RFC 3550 8.2: a restart picks a new random SSRC), so it
/// counts one reset and restarts both the sequence and the jitter; counters carry on.
/// Jitter uses the group's configured `clock_rate` when set (the operator's word beats
/// the table, e.g. for a static type misused), else the payload type's static rate;
/// packets with neither (a dynamic type, say telephone events) do not feed it. A change
/// of rate restarts the estimate, as timestamps in different clocks cannot be compared.
struct RTPStream: Sendable {
  private(set) var tracker = SequenceTracker(width: 16)
  private var ssrc: UInt32?
  private var jitter: RTPJitter?
  private let configuredClockRate: Int?

  init(clockRate: Int?) {
    configuredClockRate = clockRate.flatMap { $0 > 0 ? $0 : nil }
  }

  var jitterSeconds: Double? { jitter?.seconds }

  /// After a pause in reception: sequence and jitter start again (the pause is no gap, and
  /// its length no transit difference).
  mutating func resume() {
    tracker.resume()
    jitter?.reset()
  }

  mutating func record(_ packet: RTPPacket, arrival: Int64, hostDropped: UInt64 = 0) {
    let sequence = UInt64(packet.sequence)
    let event: SequenceEvent
    if let ssrc, ssrc != packet.ssrc {
      event = tracker.restart(at: sequence)
    } else {
      event = tracker.record(sequence, hostDropped: hostDropped)
    }
    ssrc = packet.ssrc
    if event == .reset { jitter?.reset() }
    guard let rate = configuredClockRate ?? RTPPacket.clockRate(payloadType: packet.payloadType) else { return }
    if jitter?.clockRate != rate { jitter = RTPJitter(clockRate: rate) }
    jitter?.record(arrival: arrival, timestamp: packet.timestamp)
  }
}
