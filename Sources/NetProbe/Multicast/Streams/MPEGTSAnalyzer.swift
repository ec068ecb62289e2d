/// Checks of an MPEG transport stream (ISO/IEC 13818-1) received as datagrams, read as one
/// byte stream through `TransportStreamFramer` (packets may straddle datagrams; 188-byte
/// packets and 204-byte ones with Reed-Solomon bytes): continuity counters per PID, sync
/// bytes, the transport error indicator and the PAT's presence, as counted in
/// `MPEGTSErrorCounts`, and the stream's discontinuities (`MPEGTSDiscontinuityCounts`).
///
/// Packet header, big-endian:
///
/// ```
/// | sync 0x47 | TEI PUSI prio PID(13) | scrambling(2) AFC(2) CC(4) | [adaptation field] [payload]
/// ```
///
/// Continuity, per ISO 13818-1 2.4.3.3 and TR 101 290 1.4:
/// - the counter steps by one (modulo 16) only on packets with payload (AFC 01 or 11);
///   adaptation-only packets (AFC 10) neither step it nor are checked, as some muxers set
///   their counter carelessly and the standard gives them no payload to lose;
/// - one duplicate (the same counter again, with payload) is legal; a third copy is an error;
/// - the adaptation field's discontinuity_indicator allows any counter on that packet, and
///   counts one discontinuity (reason `indicator`) when the PID was being followed;
/// - after an error the check resynchronises on the counter received, so one loss is one error;
/// - the null PID 0x1FFF and packets with a sync byte error or the transport error
///   indicator set are not checked (their header is not to be trusted);
/// - AFC 00 (reserved) packets are discarded, as the standard tells decoders to.
///
/// A restart of the stream — a datagram after more silence than `restartGapNanoseconds`, or
/// (told by the caller) a new RTP SSRC — is a discontinuity, counted once under its reason:
/// every PID's counter, the PAT clock and the sync lock start again, so an encoder restart
/// is no continuity error and no pat_missing. A restart that is both counts as silence.
///
/// A loss of 16 packets in a row on a PID goes unseen by the counter: real loss comes
/// from the RTP sequence when the stream has one.
public struct MPEGTSAnalyzer: Sendable {
  public static let packetSize = 188
  public static let syncByte: UInt8 = 0x47
  public static let nullPID = 0x1FFF
  /// TR 101 290 1.3: the PAT must repeat at least every 0.5 s.
  public static let patIntervalNanoseconds: Int64 = 500_000_000
  /// Silence after which the stream is taken as restarted: the PAT interval, beyond which a
  /// pause could not be judged by the PAT check anyway.
  public static let defaultRestartGapNanoseconds: Int64 = 500_000_000

  /// Silence (ns between datagrams read) after which the stream counts as restarted.
  public let restartGapNanoseconds: Int64

  /// Per-PID continuity state in one byte, 8192 PIDs (the 13-bit space, so the table is
  /// bounded by construction and allocated once): `seen` and `duplicated` flags and the
  /// last counter in the low nibble.
  private var continuity: [UInt8]
  private static let seen: UInt8 = 0x80
  private static let duplicated: UInt8 = 0x40

  private var framer = TransportStreamFramer()
  /// The time from which a missing PAT is measured: the first packet, the last PAT, or
  /// the last pat_missing count (so a long absence counts once per 0.5 s with traffic).
  private var patReference: Int64?
  /// The arrival of the last datagram read, for the silence that makes a restart.
  private var lastArrival: Int64?
  public private(set) var errors = MPEGTSErrorCounts()
  public private(set) var discontinuities = MPEGTSDiscontinuityCounts()
  /// Transport packets inspected, whatever their errors.
  public private(set) var packets: UInt64 = 0

  public init(restartGapNanoseconds: Int64 = MPEGTSAnalyzer.defaultRestartGapNanoseconds) {
    self.restartGapNanoseconds = max(1, restartGapNanoseconds)
    continuity = [UInt8](repeating: 0, count: Self.nullPID + 1)
  }

  /// After a pause in reception (the receiver was not listening): every PID's counter, the
  /// PAT clock and the sync lock start again, so the packets missed meanwhile are no
  /// continuity or PAT error, and the pause is no discontinuity of the stream.
  public mutating func resume() {
    resynchronize()
    framer.unlock()
    patReference = nil
    lastArrival = nil
  }

  /// After datagrams the host itself dropped (a full socket buffer): every PID's counter
  /// starts again, so the host's drop is no continuity error of the stream, and a packet
  /// the last datagram cut is not completed (the lock, the packet size, holds).
  public mutating func resynchronize() {
    for index in continuity.indices { continuity[index] = 0 }
    framer.dropPartial()
  }

  /// True when `bytes` is one or more whole 188-byte transport packets.
  public static func isWholePackets(_ bytes: ArraySlice<UInt8>) -> Bool {
    !bytes.isEmpty && bytes.count % packetSize == 0
  }

  /// True when `bytes` looks like transport packets: a sync byte first and another one
  /// packet (188 or 204 bytes) on, or whole packets. How an RTP payload is recognised as TS
  /// without payload type 33.
  public static func looksLikeTransportStream(_ bytes: ArraySlice<UInt8>) -> Bool {
    guard !bytes.isEmpty, bytes.byte(at: 0) == syncByte else { return false }
    if isWholePackets(bytes) { return true }
    return TransportStreamFramer.packetSizes.contains { $0 < bytes.count && bytes.byte(at: $0) == syncByte }
  }

  /// Checks the packets of one datagram received at `arrival` (CLOCK_REALTIME ns).
  /// Returns false, having counted nothing, when no sync lock can be found in it.
  ///
  /// - Parameters:
  ///   - newSource: the datagram comes from an RTP SSRC not heard before, while others
  ///     were: a restarted sender.
  ///   - follows: false when the datagram is known not to follow the one read before (an
  ///     RTP sequence gap or a reordered datagram): a packet the previous one cut is dropped.
  ///   - hostDropped: the socket dropped datagrams just before this one: continuity
  ///     starts again (`resynchronize`).
  @discardableResult
  public mutating func analyze(
    _ datagram: ArraySlice<UInt8>, arrival: Int64, newSource: Bool = false,
    follows: Bool = true, hostDropped: Bool = false
  ) -> Bool {
    let silent = lastArrival.map { arrival.difference(from: $0) > Double(restartGapNanoseconds) } ?? false
    let restart: MPEGTSDiscontinuityReason? = silent ? .silence : newSource ? .ssrcChange : nil
    // A restart unlocks the framer (below): the new sender's datagram must lock afresh.
    let start: TransportStreamFramer.Start? =
      restart != nil
      ? TransportStreamFramer.acquire(datagram).map { .lock(offset: $0.offset, size: $0.size) }
      : framer.start(of: datagram, continues: follows && !hostDropped)
    guard let start else { return false }
    if let restart {
      discontinuities[restart] &+= 1
      resynchronize()
      framer.unlock()
      patReference = nil
    } else if hostDropped {
      resynchronize()
    }
    lastArrival = arrival
    if let reference = patReference {
      if arrival < reference {
        // The wall clock stepped back: measure from now rather than wait for it to catch up.
        patReference = arrival
      } else if arrival.difference(from: reference) > Double(Self.patIntervalNanoseconds) {
        errors.patMissing &+= 1
        patReference = arrival
      }
    } else {
      patReference = arrival
    }
    var sawPAT = false
    var cursor = framer.cursor(from: start)
    while let event = framer.next(in: datagram, &cursor) {
      switch event {
      case .packet(let packet):
        if inspect(packet) { sawPAT = true }
      case .syncLost:
        errors.syncByte &+= 1
      }
    }
    if sawPAT { patReference = arrival }
    return true
  }

  /// One 188-byte packet; true when it starts a PAT section.
  private mutating func inspect(_ packet: ArraySlice<UInt8>) -> Bool {
    packets &+= 1
    guard packet.byte(at: 0) == Self.syncByte else {
      errors.syncByte &+= 1
      return false
    }
    let flags = packet.byte(at: 1)
    guard flags & 0x80 == 0 else {
      errors.transportError &+= 1
      return false
    }
    let pid = Int(flags & 0x1F) << 8 | Int(packet.byte(at: 2))
    let control = packet.byte(at: 3)
    let adaptationFieldControl = control >> 4 & 0x03
    guard pid != Self.nullPID, adaptationFieldControl != 0 else { return false }
    let hasPayload = adaptationFieldControl & 0x01 != 0
    var payloadStart = 4
    var discontinuity = false
    if adaptationFieldControl & 0x02 != 0 {
      let length = Int(packet.byte(at: 4))
      payloadStart = 5 + length
      if length > 0 { discontinuity = packet.byte(at: 5) & 0x80 != 0 }
    }
    checkContinuity(pid: pid, counter: control & 0x0F, hasPayload: hasPayload, discontinuity: discontinuity)
    // A PAT section starts in a PID 0 packet with payload_unit_start_indicator, after
    // the pointer_field's bytes; its table_id is 0x00.
    guard pid == 0, hasPayload, flags & 0x40 != 0, payloadStart < Self.packetSize else { return false }
    let tableID = payloadStart + 1 + Int(packet.byte(at: payloadStart))
    return tableID < Self.packetSize && packet.byte(at: tableID) == 0x00
  }

  private mutating func checkContinuity(pid: Int, counter: UInt8, hasPayload: Bool, discontinuity: Bool) {
    let state = continuity[pid]
    if discontinuity && state & Self.seen != 0 { discontinuities.indicator &+= 1 }
    guard hasPayload else {
      // A discontinuity signalled without payload frees the next payload packet's counter.
      if discontinuity { continuity[pid] = 0 }
      return
    }
    guard state & Self.seen != 0, !discontinuity else {
      continuity[pid] = Self.seen | counter
      return
    }
    let last = state & 0x0F
    if counter == last {
      if state & Self.duplicated == 0 {
        continuity[pid] = state | Self.duplicated
      } else {
        errors.continuity &+= 1
      }
    } else {
      if counter != (last &+ 1) & 0x0F { errors.continuity &+= 1 }
      continuity[pid] = Self.seen | counter
    }
  }
}
