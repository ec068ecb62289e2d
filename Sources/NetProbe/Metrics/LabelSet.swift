/// The labels of one series, escaped and rendered into `name="value",…` bytes once, when
/// the set is made.
///
/// Collectors make a series' label set at every scrape, from the target's or group's
/// current configuration and address; `Exposition` then copies the rendered bytes into
/// every sample line that uses the set (a histogram's bucket lines, the families a target's
/// series share), so label text is escaped once per series and scrape, not once per line.
public struct LabelSet: Sendable, Hashable {
  /// The names, in the order they are printed; the family's labels come first.
  public let names: [String]
  /// `a="1",b="2"` without braces; empty when there are no labels.
  let rendered: [UInt8]

  public static let empty = LabelSet([])

  public init(_ pairs: [(String, String)]) {
    names = pairs.map(\.0)
    var bytes: [UInt8] = []
    for (index, (name, value)) in pairs.enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      bytes += name.utf8
      bytes += #"=""#.utf8
      LabelSet.appendEscaped(value, to: &bytes)
      bytes.append(UInt8(ascii: "\""))
    }
    rendered = bytes
  }

  /// The labels followed by `extra` (a target's custom labels).
  public func appending(_ extra: [(String, String)]) -> LabelSet {
    guard !extra.isEmpty else { return self }
    let tail = LabelSet(extra)
    var bytes = rendered
    if !bytes.isEmpty && !tail.rendered.isEmpty { bytes.append(UInt8(ascii: ",")) }
    bytes += tail.rendered
    return LabelSet(names: names + tail.names, rendered: bytes)
  }

  private init(names: [String], rendered: [UInt8]) {
    self.names = names
    self.rendered = rendered
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
