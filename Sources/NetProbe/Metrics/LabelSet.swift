/// The labels of one series, escaped and rendered into `name="value",…` bytes once, when
/// the set is made, and encoded as protobuf `LabelPair` fields beside them.
///
/// Collectors keep a series' label set with the target or group it describes (see
/// `PingSeriesLabels`, `MulticastSeriesLabels`) and make it again only when the labels
/// change; every sample refers to it, and the text encoder copies the rendered bytes into
/// each line (a histogram's bucket lines, the families a target's series share). One
/// reference: a sample costs one retain, not one per array.
public struct LabelSet: Sendable, Hashable {
  private final class Storage: Sendable {
    let names: [String]
    let rendered: [UInt8]
    /// The same labels as protobuf `LabelPair` fields, for the delimited protobuf format.
    let protobufFields: [UInt8]
    init(names: [String], rendered: [UInt8], protobufFields: [UInt8]) {
      self.names = names
      self.rendered = rendered
      self.protobufFields = protobufFields
    }
  }
  private let storage: Storage

  /// The names, in the order they are printed; the family's labels come first.
  public var names: [String] { storage.names }
  /// `a="1",b="2"` without braces; empty when there are no labels.
  var rendered: [UInt8] { storage.rendered }
  /// The labels as a protobuf Metric's `label` fields.
  var protobufFields: [UInt8] { storage.protobufFields }
  var protobufFieldsCount: Int { storage.protobufFields.count }

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
    storage = Storage(names: pairs.map(\.0), rendered: bytes, protobufFields: ProtobufExposition.labelFields(pairs))
  }

  /// The labels followed by `extra` (a target's custom labels).
  public func appending(_ extra: [(String, String)]) -> LabelSet {
    guard !extra.isEmpty else { return self }
    let tail = LabelSet(extra)
    var bytes = rendered
    if !bytes.isEmpty && !tail.rendered.isEmpty { bytes.append(UInt8(ascii: ",")) }
    bytes += tail.rendered
    return LabelSet(names: names + tail.names, rendered: bytes, protobufFields: protobufFields + tail.protobufFields)
  }

  private init(names: [String], rendered: [UInt8], protobufFields: [UInt8]) {
    storage = Storage(names: names, rendered: rendered, protobufFields: protobufFields)
  }

  public static func == (a: LabelSet, b: LabelSet) -> Bool {
    a.storage === b.storage || (a.storage.names == b.storage.names && a.storage.rendered == b.storage.rendered)
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(storage.rendered)
  }

  /// Calls `body` with the rendered bytes, without copying or retaining the array.
  @inline(__always)
  func withRendered<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    storage.rendered.withUnsafeBufferPointer(body)
  }

  /// Calls `body` with the protobuf `label` fields, without copying or retaining the array.
  @inline(__always)
  func withProtobufFields<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    storage.protobufFields.withUnsafeBufferPointer(body)
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
