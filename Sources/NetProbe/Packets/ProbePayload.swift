/// What every echo request of ours carries after the ICMP header, so that a reply is
/// matched to its probe by content rather than by the ICMP identifier (which datagram
/// sockets rewrite) or by arrival order.
///
/// Layout, big-endian, 24 bytes, then padding to the configured payload size:
///
/// | bytes | field |
/// |---|---|
/// | 0–7 | per-process nonce: random at start, so replies to another process or an earlier run are recognised as foreign |
/// | 8–11 | the target's slot in the engine |
/// | 12–15 | the probe's 32-bit sequence for that slot |
/// | 16–23 | send time, ns since the Unix epoch (CLOCK_REALTIME) |
public struct ProbePayload: Sendable, Equatable {
  public static let headerSize = 24
  /// Set in `slot` on the path tracer's probes, clear on the ping engine's.
  public static let traceSlotFlag: UInt32 = 0x8000_0000
  /// Set in the ICMP identifier of the path tracer's probes, clear in the ping engine's: on
  /// raw sockets, which see every ICMP error of the host, an error that quotes only the 8
  /// bytes of a request's ICMP header (RFC 792) names the engine it is for by this bit.
  public static let traceIdentifierBit: UInt16 = 0x8000

  public var nonce: UInt64
  public var slot: UInt32
  public var sequence: UInt32
  public var sendTimeNanoseconds: Int64

  public init(nonce: UInt64, slot: UInt32, sequence: UInt32, sendTimeNanoseconds: Int64) {
    self.nonce = nonce
    self.slot = slot
    self.sequence = sequence
    self.sendTimeNanoseconds = sendTimeNanoseconds
  }

  /// Writes the fields into the first 24 bytes of `buffer` (which must hold them); the rest
  /// of the buffer (the padding) is left as it is.
  public func write(into buffer: inout [UInt8], at offset: Int = 0) {
    precondition(buffer.count >= offset + ProbePayload.headerSize, "payload buffer too small")
    func put(_ value: UInt64, _ at: Int, _ width: Int) {
      for index in 0..<width { buffer[offset + at + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - index))) }
    }
    put(nonce, 0, 8)
    put(UInt64(slot), 8, 4)
    put(UInt64(sequence), 12, 4)
    put(UInt64(bitPattern: sendTimeNanoseconds), 16, 8)
  }

  /// Reads the fields; nil when fewer than 24 bytes are there.
  public static func decode(_ bytes: some Collection<UInt8>) -> ProbePayload? {
    guard bytes.count >= headerSize else { return nil }
    var iterator = bytes.makeIterator()
    func take(_ width: Int) -> UInt64 {
      var value: UInt64 = 0
      for _ in 0..<width { value = value << 8 | UInt64(iterator.next()!) }
      return value
    }
    let nonce = take(8)
    let slot = UInt32(take(4))
    let sequence = UInt32(take(4))
    let time = Int64(bitPattern: take(8))
    return ProbePayload(nonce: nonce, slot: slot, sequence: sequence, sendTimeNanoseconds: time)
  }

  /// The byte at `index` of a payload (counted from the payload's start) past the header:
  /// a fixed, recognisable pattern like ping's, so a corrupted reply is detected by
  /// comparing the whole payload.
  @inline(__always)
  public static func patternByte(at index: Int) -> UInt8 { UInt8(truncatingIfNeeded: index &+ 0x10) }

  /// A whole payload of `count` bytes filled with the pattern; `write` then stamps the
  /// header over its first 24 bytes.
  public static func padding(count: Int) -> [UInt8] {
    (0..<max(0, count)).map(patternByte(at:))
  }

  /// True when every byte after the header (and after `skipping` more bytes: the path
  /// tracer's flow-compensation word) follows the pattern.
  public static func hasIntactPadding(_ payload: ArraySlice<UInt8>, skipping: Int = 0) -> Bool {
    var index = headerSize + skipping
    for byte in payload.dropFirst(headerSize + skipping) {
      if byte != patternByte(at: index) { return false }
      index += 1
    }
    return true
  }
}
