/// Reads of fixed-width integers from a received datagram, by offset from its first byte.
///
/// The engine hands the decoders slices of its receive buffer whose indices do not start
/// at 0; reading through `startIndex + offset` in one place keeps every decoder from
/// mixing up slice indices and offsets. Callers check lengths first: these trap, like any
/// subscript, when the bytes are not there.
extension ArraySlice<UInt8> {
  /// The byte `offset` bytes after the slice's first.
  @inline(__always)
  func byte(at offset: Int) -> UInt8 { self[startIndex + offset] }

  /// `width` bytes (1 to 8) at `offset`, most significant first (network order).
  @inline(__always)
  func bigEndian(at offset: Int, width: Int) -> UInt64 {
    var value: UInt64 = 0
    for index in 0..<width { value = value << 8 | UInt64(self[startIndex + offset + index]) }
    return value
  }

  /// `width` bytes (1 to 8) at `offset`, least significant first.
  @inline(__always)
  func littleEndian(at offset: Int, width: Int) -> UInt64 {
    var value: UInt64 = 0
    for index in (0..<width).reversed() { value = value << 8 | UInt64(self[startIndex + offset + index]) }
    return value
  }

  /// The `count` bytes at `offset`, as a slice of the same buffer (no copy).
  @inline(__always)
  func bytes(at offset: Int, count: Int) -> ArraySlice<UInt8> {
    self[(startIndex + offset)..<(startIndex + offset + count)]
  }
}
