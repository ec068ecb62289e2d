/// Which of the most recent 1024 sequence numbers arrived: bit `sequence mod 1024`.
///
/// The duplicate detector of `SequenceTracker`, as mcjoin keeps it. Inline storage (a
/// tuple of sixteen words, 128 bytes) rather than an Array, so a tracker is a plain value
/// with no heap buffer: nothing is allocated per packet or per sender, and copying a
/// tracker never shares state.
struct ReceivedBitmap: Sendable {
  /// Sequence numbers the bitmap tells apart. A power of two that divides every
  /// sequence space in use (2^16 and up), so `sequence mod capacity` stays consistent
  /// across a wrap-around.
  static let capacity = 1024

  private var words:
    (
      UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
      UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

  init() {}

  @inline(__always)
  private static func position(_ sequence: UInt64) -> (word: Int, bit: UInt64) {
    let slot = Int(truncatingIfNeeded: sequence % UInt64(capacity))
    return (slot >> 6, UInt64(1) << UInt64(slot & 63))
  }

  func contains(_ sequence: UInt64) -> Bool {
    let (word, bit) = Self.position(sequence)
    return withUnsafeBytes(of: words) { $0.load(fromByteOffset: word * 8, as: UInt64.self) } & bit != 0
  }

  mutating func insert(_ sequence: UInt64) {
    let (word, bit) = Self.position(sequence)
    withUnsafeMutableBytes(of: &words) { raw in
      raw.storeBytes(of: raw.load(fromByteOffset: word * 8, as: UInt64.self) | bit, toByteOffset: word * 8, as: UInt64.self)
    }
  }

  mutating func remove(_ sequence: UInt64) {
    let (word, bit) = Self.position(sequence)
    withUnsafeMutableBytes(of: &words) { raw in
      raw.storeBytes(of: raw.load(fromByteOffset: word * 8, as: UInt64.self) & ~bit, toByteOffset: word * 8, as: UInt64.self)
    }
  }

  mutating func removeAll() {
    words = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
  }
}
