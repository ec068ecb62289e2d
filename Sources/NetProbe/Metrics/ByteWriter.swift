/// A growable byte buffer for encoders: appends are a bounds check and a `memcpy`, without
/// the uniqueness and capacity checks of `Array.append` — at 370,000 sample lines a scrape,
/// those checks were a third of the text encoder's time. One per stream, reused for every
/// piece.
public struct ByteWriter: ~Copyable {
  private var start: UnsafeMutablePointer<UInt8>
  private var capacity: Int
  /// Bytes written so far.
  public private(set) var count = 0

  public init(capacity: Int) {
    self.capacity = max(capacity, 64)
    start = .allocate(capacity: self.capacity)
  }

  deinit { start.deallocate() }

  /// Makes room for `more` bytes past `count`.
  @inline(__always)
  public mutating func reserve(_ more: Int) {
    if count + more > capacity { grow(to: count + more) }
  }

  private mutating func grow(to needed: Int) {
    let larger = max(needed, capacity * 2)
    let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: larger)
    moved.update(from: start, count: count)
    start.deallocate()
    start = moved
    capacity = larger
  }

  @inline(__always)
  public mutating func append(_ byte: UInt8) {
    reserve(1)
    start[count] = byte
    count += 1
  }

  /// A byte where `reserve` has already made room.
  @inline(__always)
  mutating func appendUnchecked(_ byte: UInt8) {
    assert(count < capacity)
    start[count] = byte
    count += 1
  }

  /// 8 bytes, least significant first, where `reserve` has already made room.
  @inline(__always)
  mutating func appendLittleEndian(_ value: UInt64) {
    assert(count + 8 <= capacity)
    UnsafeMutableRawPointer(start + count).storeBytes(of: value.littleEndian, as: UInt64.self)
    count += 8
  }

  @inline(__always)
  public mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
    reserve(bytes.count)
    (start + count).update(from: base, count: bytes.count)
    count += bytes.count
  }

  @inline(__always)
  public mutating func append(_ bytes: [UInt8]) {
    bytes.withUnsafeBufferPointer { append($0) }
  }

  public mutating func append(_ text: String) {
    var text = text
    text.withUTF8 { append($0) }
  }

  /// Appends `value` in decimal.
  public mutating func appendDecimal(_ value: UInt64) {
    reserve(20)
    if value < 10 {
      start[count] = UInt8(ascii: "0") + UInt8(value)
      count += 1
      return
    }
    var digits = 0
    var rest = value
    while rest > 0 {
      digits += 1
      rest /= 10
    }
    rest = value
    for offset in stride(from: digits - 1, through: 0, by: -1) {
      start[count + offset] = UInt8(ascii: "0") + UInt8(rest % 10)
      rest /= 10
    }
    count += digits
  }

  /// What was written, as an array, and the writer emptied for the next piece.
  public mutating func take() -> [UInt8] {
    let bytes = [UInt8](UnsafeBufferPointer(start: start, count: count))
    count = 0
    return bytes
  }
}
