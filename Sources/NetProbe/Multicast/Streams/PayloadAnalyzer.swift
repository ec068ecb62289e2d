/// The per-stream front end of payload decoding: the receive engine hands it every
/// datagram of a group, it decodes the group's format and keeps the sequence, jitter
/// and MPEG-TS statistics. Pure: the arrival time comes from the caller (the kernel's
/// receive timestamp), so tests drive it with made-up times.
///
/// Per packet it allocates nothing: the state is fixed-size values, the MPEG-TS PID table
/// is allocated once in `init`, and the beacon sender table grows only when a new sender
/// appears. Keep it in place (a stored property mutated directly, not copied out and
/// back), or its buffers are copied on write.
///
/// Formats:
/// - `raw`: every datagram accepted, nothing decoded.
/// - `beacon`: per (sender id, stream id), summed (see `BeaconSenders`); the verdict
///   carries the one-way delay when the group has `clock_synchronized`.
/// - `rtp`: the RTP header's sequence, SSRC and jitter. The payload is not inspected,
///   even when it is a transport stream: TS checks are what format `mpegts` is for, and
///   keeping them to it means a stream's series never appear or vanish with its content.
/// - `mpegts`: transport packets read as a byte stream across datagrams
///   (`TransportStreamFramer`), directly in UDP or inside RTP (payload type 33, or an RTP
///   payload that looks like TS); inside RTP the RTP sequence and jitter are kept too,
///   the jitter at 90 kHz (RFC 2250) unless `clock_rate` says otherwise, so a dynamic
///   payload type carrying TS gets it as well. Malformed only when no sync lock is found.
/// - `sequence`: the configured field through `SequenceTracker`. A group built without a
///   usable field (the config loader rejects one) accepts everything and tracks nothing.
///
/// A malformed datagram changes no statistic: it is either all counted or not at all.
public struct PayloadAnalyzer: Sendable {
  public let format: PayloadFormat
  private let reportsOneWayDelay: Bool
  private let sequenceField: SequenceField?
  private var fieldTracker: SequenceTracker?
  private var beacons: BeaconSenders?
  private var rtp: RTPStream?
  private var transport: MPEGTSAnalyzer?
  /// mpegts only: a datagram came inside RTP, so the RTP sequence counters apply.
  private var carriesRTP = false
  /// What the last datagram's sequence number was to its sequence (nil when it had none:
  /// raw, plain TS, malformed), for the per-second reception history, which places a gap's
  /// missing numbers in time when the gap opens rather than when the counters settle it.
  public private(set) var lastSequenceEvent: SequenceEvent?

  public init(config: MulticastGroupConfig) {
    self.init(
      format: config.format, sequenceField: config.sequenceField, clockRate: config.clockRate,
      clockSynchronized: config.clockSynchronized, restartGapNanoseconds: config.restartGap.nanoseconds)
  }

  public init(
    format: PayloadFormat, sequenceField: SequenceField? = nil, clockRate: Int? = nil,
    clockSynchronized: Bool = false,
    restartGapNanoseconds: Int64 = MPEGTSAnalyzer.defaultRestartGapNanoseconds
  ) {
    self.format = format
    reportsOneWayDelay = format == .beacon && clockSynchronized
    self.sequenceField = format == .sequence ? sequenceField.flatMap { $0.isTrackable ? $0 : nil } : nil
    switch format {
    case .raw: break
    case .beacon: beacons = BeaconSenders()
    case .rtp: rtp = RTPStream(clockRate: clockRate)
    case .mpegts:
      // RFC 2250: TS over RTP runs a 90 kHz clock whatever the payload type says.
      rtp = RTPStream(clockRate: clockRate ?? RTPPacket.clockRate(payloadType: RTPPacket.mpegTransportStreamPayloadType))
      transport = MPEGTSAnalyzer(restartGapNanoseconds: restartGapNanoseconds)
    case .sequence: fieldTracker = self.sequenceField.map { SequenceTracker(width: $0.bits) }
    }
  }

  /// Decodes one datagram's UDP payload, received at `arrival` (CLOCK_REALTIME ns).
  /// `payload` may be a slice of a larger receive buffer: its indices need not start at 0.
  /// `hostDropped`: datagrams the socket dropped just before this one (SO_RXQ_OVFL), which
  /// the sequence accounting does not count lost and the continuity check resynchronises on.
  public mutating func analyze(_ payload: ArraySlice<UInt8>, arrival: Int64, hostDropped: UInt64 = 0) -> PayloadVerdict {
    lastSequenceEvent = nil
    switch format {
    case .raw:
      return .accepted(oneWayDelay: nil)
    case .beacon:
      guard let beacon = BeaconPayload(parsing: payload) else { return .malformed }
      lastSequenceEvent = beacons?.record(beacon, arrival: arrival, hostDropped: hostDropped)
      let delay = reportsOneWayDelay ? arrival.difference(from: beacon.sendTimeNanoseconds) / 1e9 : nil
      return .accepted(oneWayDelay: delay)
    case .rtp:
      guard let packet = RTPPacket(parsing: payload) else { return .malformed }
      lastSequenceEvent = rtp?.record(packet, arrival: arrival, hostDropped: hostDropped)
      return .accepted(oneWayDelay: nil)
    case .mpegts:
      return analyzeTransportStream(payload, arrival: arrival, hostDropped: hostDropped)
    case .sequence:
      guard let sequenceField else { return .accepted(oneWayDelay: nil) }
      guard let value = sequenceField.value(in: payload) else { return .malformed }
      lastSequenceEvent = fieldTracker?.record(value, hostDropped: hostDropped)
      return .accepted(oneWayDelay: nil)
    }
  }

  /// RTP first: a plain TS datagram starts with 0x47, which as an RTP header is version
  /// 1, so the two never collide. An RTP header whose payload is not TS leaves the plain
  /// reading (a first sync byte lost in a datagram of whole packets).
  ///
  /// Inside RTP the sequence says more than the bytes can: a datagram that is not its
  /// SSRC's next number does not continue the byte stream (a packet the previous datagram
  /// cut is dropped), and a new SSRC is a restart (a discontinuity, not continuity errors).
  /// Both are read before anything is counted, so a datagram in which the framer finds no
  /// lock (malformed) moves no RTP counter either.
  private mutating func analyzeTransportStream(_ payload: ArraySlice<UInt8>, arrival: Int64, hostDropped: UInt64) -> PayloadVerdict {
    if let packet = RTPPacket(parsing: payload) {
      let inner = packet.payload(of: payload)
      if packet.payloadType == RTPPacket.mpegTransportStreamPayloadType || MPEGTSAnalyzer.looksLikeTransportStream(inner) {
        let newSource = rtp?.isNewSource(packet.ssrc) ?? false
        let follows = rtp?.follows(packet) ?? true
        guard
          transport?.analyze(
            inner, arrival: arrival, newSource: newSource, follows: follows,
            hostDropped: hostDropped > 0) == true
        else { return .malformed }
        lastSequenceEvent = rtp?.record(packet, arrival: arrival, hostDropped: hostDropped)
        carriesRTP = true
        return .accepted(oneWayDelay: nil)
      }
    }
    guard transport?.analyze(payload, arrival: arrival, hostDropped: hostDropped > 0) == true else { return .malformed }
    return .accepted(oneWayDelay: nil)
  }

  /// The stream fell silent (nothing for the group's `no_data_timeout`): the sequence
  /// numbers still undecided (the last 64 behind the newest) that never came are counted
  /// lost now, so a drop right before an outage shows when the outage does. Counting them
  /// again is impossible: once settled, nothing is pending until new packets come.
  public mutating func settle() {
    fieldTracker?.closeOut()
    beacons?.settle()
    rtp?.settle()
  }

  /// Called at every join after the first: what was sent while the group was left (a join
  /// latency test) or unreachable (the interface was gone) is not loss, reordering or a
  /// continuity error of the stream — `membership` already shows the pause.
  public mutating func resume() {
    fieldTracker?.resume()
    beacons?.resume()
    rtp?.resume()
    transport?.resume()
  }

  public var snapshot: PayloadSnapshot {
    switch format {
    case .raw:
      PayloadSnapshot(sequenced: false)
    case .beacon:
      PayloadSnapshot(sequenced: true, counts: beacons?.counts ?? SequenceCounts(), jitterSeconds: beacons?.jitterSeconds)
    case .rtp:
      PayloadSnapshot(sequenced: true, counts: rtp?.counts ?? SequenceCounts(), jitterSeconds: rtp?.jitterSeconds)
    case .mpegts:
      PayloadSnapshot(
        sequenced: carriesRTP, counts: rtp?.counts ?? SequenceCounts(),
        jitterSeconds: carriesRTP ? rtp?.jitterSeconds : nil, mpegtsErrors: transport?.errors ?? MPEGTSErrorCounts(),
        mpegtsDiscontinuities: transport?.discontinuities ?? MPEGTSDiscontinuityCounts())
    case .sequence:
      PayloadSnapshot(sequenced: sequenceField != nil, counts: fieldTracker?.counts ?? SequenceCounts())
    }
  }
}
