/// The fixed header of an RTP packet (RFC 3550 5.1) and where its payload lies.
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |V=2|P|X|  CC   |M|     PT      |       sequence number         |
/// |                           timestamp                           |
/// |           synchronization source (SSRC) identifier            |
/// |            contributing source (CSRC) identifiers (CC × 4)    |
/// |  extension: profile-defined (16) |  length in words (16)      |  if X
/// |  extension: length × 4 bytes                                  |
/// |  payload ...                        | padding | padding count |  if P
/// ```
///
/// Nothing is trusted: a CSRC list, extension or padding count that runs past the
/// datagram makes the whole packet invalid (nil) rather than a payload of garbage.
public struct RTPPacket: Sendable, Equatable {
  public static let fixedHeaderSize = 12

  public var padding: Bool
  public var hasExtension: Bool
  public var csrcCount: Int
  public var marker: Bool
  public var payloadType: UInt8
  public var sequence: UInt16
  public var timestamp: UInt32
  public var ssrc: UInt32
  /// The payload's bytes as offsets from the datagram's first byte: after the CSRCs and
  /// the extension, before the padding. Use `payload(of:)` to cut it from the datagram.
  public var payloadOffsets: Range<Int>

  public init?(parsing datagram: ArraySlice<UInt8>) {
    let count = datagram.count
    guard count >= Self.fixedHeaderSize else { return nil }
    let first = datagram.byte(at: 0)
    guard first >> 6 == 2 else { return nil }
    padding = first & 0x20 != 0
    hasExtension = first & 0x10 != 0
    csrcCount = Int(first & 0x0F)
    let second = datagram.byte(at: 1)
    marker = second & 0x80 != 0
    payloadType = second & 0x7F
    sequence = UInt16(datagram.bigEndian(at: 2, width: 2))
    timestamp = UInt32(datagram.bigEndian(at: 4, width: 4))
    ssrc = UInt32(datagram.bigEndian(at: 8, width: 4))
    var start = Self.fixedHeaderSize + 4 * csrcCount
    if hasExtension {
      guard start + 4 <= count else { return nil }
      start += 4 + 4 * Int(datagram.bigEndian(at: start + 2, width: 2))
    }
    var end = count
    if padding {
      // The last byte counts the padding, itself included: 0 is invalid.
      let padBytes = Int(datagram.byte(at: count - 1))
      guard padBytes >= 1 else { return nil }
      end -= padBytes
    }
    guard start <= end else { return nil }
    payloadOffsets = start..<end
  }

  public init?(parsing datagram: [UInt8]) {
    self.init(parsing: datagram[...])
  }

  /// The payload of `datagram` (the slice this header was parsed from), without a copy.
  public func payload(of datagram: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    datagram.bytes(at: payloadOffsets.lowerBound, count: payloadOffsets.count)
  }
}
