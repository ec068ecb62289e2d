extension RTPPacket {
  /// The RTP clock rate in Hz of a static payload type (RFC 3551 tables 4 and 5); nil
  /// for unassigned and dynamic (96–127) types, whose rate only the session description
  /// (and so the group's `clock_rate`) knows.
  ///
  /// G.722 (9) is 8000 although it samples at 16 kHz: RFC 3551 4.5.2 keeps the clock at
  /// 8000 for compatibility with an error in RFC 1890. Video and MPEG types run at 90 kHz.
  public static func clockRate(payloadType: UInt8) -> Int? {
    switch payloadType {
    case 0, 3, 4, 5, 7, 8, 9, 12, 13, 15, 18: 8000
    case 6: 16000
    case 10, 11: 44100
    case 16: 11025
    case 17: 22050
    case 14, 25, 26, 28, 31, 32, 33, 34: 90000
    default: nil
    }
  }

  /// MP2T: an MPEG transport stream (RFC 2250), seven 188-byte packets per datagram as a rule.
  public static let mpegTransportStreamPayloadType: UInt8 = 33
}
