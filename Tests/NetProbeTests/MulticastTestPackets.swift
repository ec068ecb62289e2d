@testable import NetProbe

/// Builders of the datagrams the multicast codec tests feed: RTP headers and MPEG-TS
/// packets with exactly the fields a test is about.
enum MulticastTestPackets {
  /// An RTP datagram: the 12-byte fixed header, then `payload`.
  static func rtp(
    payloadType: UInt8 = 33, sequence: UInt16, timestamp: UInt32 = 0, ssrc: UInt32 = 0x1111_2222,
    marker: Bool = false, payload: [UInt8] = []
  ) -> [UInt8] {
    var bytes: [UInt8] = [0x80, (marker ? 0x80 : 0) | payloadType]
    bytes += [UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
    bytes += withBigEndian(UInt64(timestamp), width: 4)
    bytes += withBigEndian(UInt64(ssrc), width: 4)
    return bytes + payload
  }

  /// A 188-byte TS packet. `adaptation`: nil for payload only (AFC 01); otherwise an
  /// adaptation field of that many bytes (AFC 11, or 10 when `payload` is false).
  static func ts(
    pid: Int, counter: UInt8, payload: Bool = true, adaptation: Int? = nil, discontinuity: Bool = false,
    unitStart: Bool = false, transportError: Bool = false, sync: UInt8 = 0x47
  ) -> [UInt8] {
    var packet = [UInt8](repeating: 0xFF, count: 188)
    packet[0] = sync
    packet[1] = (transportError ? 0x80 : 0) | (unitStart ? 0x40 : 0) | UInt8(pid >> 8 & 0x1F)
    packet[2] = UInt8(pid & 0xFF)
    let control: UInt8 = (adaptation != nil ? 0x20 : 0) | (payload ? 0x10 : 0)
    packet[3] = control | counter & 0x0F
    if let adaptation {
      packet[4] = UInt8(adaptation)
      if adaptation > 0 { packet[5] = discontinuity ? 0x80 : 0x00 }
    }
    return packet
  }

  /// A PAT packet on PID 0: payload_unit_start, pointer_field 0, table_id 0x00.
  static func pat(counter: UInt8) -> [UInt8] {
    var packet = ts(pid: 0, counter: counter, unitStart: true)
    packet[4] = 0  // pointer_field
    packet[5] = 0  // table_id: program_association_section
    return packet
  }

  /// `count` payload packets on `pid` with counters from `first`, concatenated.
  static func run(pid: Int, from first: UInt8, count: Int) -> [UInt8] {
    (0..<count).flatMap { ts(pid: pid, counter: UInt8((Int(first) + $0) & 0x0F)) }
  }

  static func withBigEndian(_ value: UInt64, width: Int) -> [UInt8] {
    (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - $0))) }
  }

  /// `bytes` as a slice of a larger buffer, so its indices start at `offset`, not 0: as
  /// the receive engine hands datagrams over.
  static func embedded(_ bytes: [UInt8], offset: Int = 7) -> ArraySlice<UInt8> {
    let buffer = [UInt8](repeating: 0xEE, count: offset) + bytes + [UInt8](repeating: 0xDD, count: 9)
    return buffer[offset..<(offset + bytes.count)]
  }
}
