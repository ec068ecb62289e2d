/// The labels of one series, escaped and rendered into `name="value",…` bytes once, when
/// the set is made, and encoded as protobuf `LabelPair` fields beside them.
///
/// Collectors keep a series' label set with the target or group it describes (see
/// `PingSeriesLabels`, `MulticastSeriesLabels`) and make it again only when the labels
/// change; every sample refers to it, and the text encoder copies the rendered bytes into
/// each line (a histogram's bucket lines, the families a target's series share). One
/// reference: a sample costs one retain, not one per array. At 10,000 targets the sets
/// are a fifth of the exporter's memory, so a set holds its two encodings and nothing else,
/// in one allocation: the text rendering, then the protobuf `LabelPair` fields. An encoder
/// reads a scrape's label sets in no order the cache can guess, and one block per set is
/// one miss instead of two.
///
/// Sendable by hand: `ManagedBuffer` cannot say it is, and the storage is never written
/// after `make`.
public struct LabelSet: @unchecked Sendable, Hashable {
  /// The rendering's length in the header, the bytes in the tail.
  private final class Storage: ManagedBuffer<Int, UInt8> {
    static func make(rendered: [UInt8], protobufFields: [UInt8]) -> Storage {
      let buffer = Storage.create(minimumCapacity: rendered.count + protobufFields.count) { _ in rendered.count }
      buffer.withUnsafeMutablePointerToElements { bytes in
        bytes.initialize(from: rendered, count: rendered.count)
        (bytes + rendered.count).initialize(from: protobufFields, count: protobufFields.count)
      }
      return unsafeDowncast(buffer, to: Storage.self)
    }
  }
  private let storage: Storage
  /// The protobuf fields' length, kept beside the reference: the protobuf encoder adds up
  /// every sample's size before writing a family, and reading it through the storage was a
  /// cache miss per sample.
  private let protobufLength: UInt32

  /// The names, in the order they are printed; the family's labels come first. Read back
  /// from the rendering (names need no escaping, and a value's `"` always is), for checks.
  public var names: [String] {
    var names: [String] = []
    var index = 0
    let block = rendered
    while index < block.count {
      let start = index
      while block[index] != UInt8(ascii: "=") { index += 1 }
      names.append(String(decoding: block[start..<index], as: UTF8.self))
      index += 2  // `="`
      while block[index] != UInt8(ascii: "\"") { index += block[index] == UInt8(ascii: "\\") ? 2 : 1 }
      index += 2  // `"` and the `,` before the next label (or past the end)
    }
    return names
  }
  /// `a="1",b="2"` without braces; empty when there are no labels.
  var rendered: [UInt8] { withRendered { Array($0) } }
  /// The labels as a protobuf Metric's `label` fields.
  var protobufFields: [UInt8] { withProtobufFields { Array($0) } }
  var protobufFieldsCount: Int { Int(protobufLength) }

  public static let empty = LabelSet([])

  public init(_ pairs: [(String, String)]) {
    var bytes: [UInt8] = []
    for (index, (name, value)) in pairs.enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      bytes += name.utf8
      bytes += #"=""#.utf8
      LabelSet.appendEscaped(value, to: &bytes)
      bytes.append(UInt8(ascii: "\""))
    }
    self.init(rendered: bytes, protobufFields: ProtobufExposition.labelFields(pairs))
  }

  /// The labels followed by `extra` (a target's custom labels).
  public func appending(_ extra: [(String, String)]) -> LabelSet {
    guard !extra.isEmpty else { return self }
    let tail = LabelSet(extra)
    var bytes = rendered
    if !bytes.isEmpty && !tail.rendered.isEmpty { bytes.append(UInt8(ascii: ",")) }
    bytes += tail.rendered
    return LabelSet(rendered: bytes, protobufFields: protobufFields + tail.protobufFields)
  }

  private init(rendered: [UInt8], protobufFields: [UInt8]) {
    storage = Storage.make(rendered: rendered, protobufFields: protobufFields)
    protobufLength = UInt32(protobufFields.count)
  }

  /// Equal when they render the same: the rendering holds the names and the values.
  public static func == (a: LabelSet, b: LabelSet) -> Bool {
    a.storage === b.storage || a.withRendered { x in b.withRendered { y in x.elementsEqual(y) } }
  }

  public func hash(into hasher: inout Hasher) {
    withRendered { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
  }

  /// Calls `body` with the rendered bytes, in place.
  @inline(__always)
  func withRendered<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    storage.withUnsafeMutablePointers { count, bytes in body(UnsafeBufferPointer(start: bytes, count: count.pointee)) }
  }

  /// Calls `body` with the protobuf `label` fields, in place.
  @inline(__always)
  func withProtobufFields<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    storage.withUnsafeMutablePointers { count, bytes in
      body(UnsafeBufferPointer(start: bytes + count.pointee, count: Int(protobufLength)))
    }
  }

  /// Label value escaping of the text format: backslash, double quote and line feed.
  static func appendEscaped(_ value: String, to bytes: inout [UInt8]) {
    for byte in value.utf8 {
      switch byte {
      case UInt8(ascii: "\\"): bytes += #"\\"#.utf8
      case UInt8(ascii: "\""): bytes += #"\""#.utf8
      case UInt8(ascii: "\n"): bytes += #"\n"#.utf8
      default: bytes.append(byte)
      }
    }
  }
}
