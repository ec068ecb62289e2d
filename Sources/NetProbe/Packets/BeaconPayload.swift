/// The datagram a netprobe beacon sends, so that agents on other hosts measure their
/// reception of it: loss and reordering from the sequence, jitter and (with synchronised
/// clocks) one-way delay from the send time.
///
/// Layout, big-endian, a 32-byte header then padding of any value up to the configured
/// size (Python `struct` format `">4sB3xIIQq"`, which the lab's sender uses):
///
/// | bytes | field |
/// |---|---|
/// | 0–3 | magic, ASCII `NPBC`: tells a beacon from other traffic on the port |
/// | 4 | version, 1 |
/// | 5–7 | reserved: sent as zero, ignored on receipt so a later version may use them |
/// | 8–11 | stream id: tells apart beacons of one sender sharing a group |
/// | 12–15 | sender id: tells apart agents sending to one group |
/// | 16–23 | sequence, per (sender, stream), from 0 |
/// | 24–31 | send time, ns since the Unix epoch (CLOCK_REALTIME) |
public struct BeaconPayload: Sendable, Equatable {
  public static let headerSize = 32
  /// ASCII "NPBC" read as a big-endian word.
  public static let magic: UInt32 = 0x4E50_4243
  public static let version: UInt8 = 1

  public var streamID: UInt32
  public var senderID: UInt32
  public var sequence: UInt64
  public var sendTimeNanoseconds: Int64

  public init(streamID: UInt32, senderID: UInt32, sequence: UInt64, sendTimeNanoseconds: Int64) {
    self.streamID = streamID
    self.senderID = senderID
    self.sequence = sequence
    self.sendTimeNanoseconds = sendTimeNanoseconds
  }

  /// Decodes the header of `bytes`; nil when fewer than 32 bytes, another magic or
  /// another version. What follows the header is not looked at.
  public init?(parsing bytes: some Collection<UInt8>) {
    guard bytes.count >= Self.headerSize else { return nil }
    var iterator = bytes.makeIterator()
    func take(_ width: Int) -> UInt64 {
      var value: UInt64 = 0
      for _ in 0..<width { value = value << 8 | UInt64(iterator.next()!) }
      return value
    }
    guard take(4) == UInt64(Self.magic), take(1) == UInt64(Self.version)
    else { return nil }
    _ = take(3)
    streamID = UInt32(take(4))
    senderID = UInt32(take(4))
    sequence = take(8)
    sendTimeNanoseconds = Int64(bitPattern: take(8))
  }

  /// Makes `buffer` exactly `size` bytes: this header, then zero padding. The sender
  /// keeps one buffer and calls this per packet; it allocates only when `size` outgrows
  /// the buffer's capacity.
  public func encode(into buffer: inout [UInt8], size: Int) {
    precondition(size >= Self.headerSize, "a beacon is at least \(Self.headerSize) bytes")
    buffer.removeAll(keepingCapacity: true)
    buffer.append(contentsOf: repeatElement(0, count: size))
    func put(_ value: UInt64, _ offset: Int, _ width: Int) {
      for index in 0..<width {
        buffer[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - index)))
      }
    }
    put(UInt64(Self.magic), 0, 4)
    put(UInt64(Self.version), 4, 1)
    put(UInt64(streamID), 8, 4)
    put(UInt64(senderID), 12, 4)
    put(sequence, 16, 8)
    put(UInt64(bitPattern: sendTimeNanoseconds), 24, 8)
  }

  /// A new `size`-byte datagram of this header and zero padding.
  public func encoded(size: Int = BeaconPayload.headerSize) -> [UInt8] {
    var buffer: [UInt8] = []
    encode(into: &buffer, size: size)
    return buffer
  }
}
