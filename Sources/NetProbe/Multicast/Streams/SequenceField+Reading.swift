extension SequenceField {
  /// Bits of the counter, the width `SequenceTracker` wraps at.
  public var bits: Int { width * 8 }

  /// True for the fields the tracker can follow: 2 to 8 bytes at a non-negative offset
  /// (the config accepts 2, 4 and 8).
  public var isTrackable: Bool { offset >= 0 && (2...8).contains(width) }

  /// The counter in `payload` (a slice whose indices need not start at 0); nil when the
  /// payload ends before the field does, or the field is not trackable.
  public func value(in payload: ArraySlice<UInt8>) -> UInt64? {
    guard isTrackable, payload.count - width >= offset else { return nil }
    switch endianness {
    case .big: return payload.bigEndian(at: offset, width: width)
    case .little: return payload.littleEndian(at: offset, width: width)
    }
  }
}
