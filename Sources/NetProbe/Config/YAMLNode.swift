/// A node of a YAML-lite document, with the place it started so that every later check
/// can name FILE:LINE:COL.
///
/// YAML-lite is a strict subset of YAML 1.1 (see `YAMLLite`): every document it accepts is
/// read by PyYAML or any other YAML parser as the same tree.
public struct YAMLNode: Sendable, Hashable {
  public enum Content: Sendable, Hashable {
    case scalar(YAMLScalar)
    case mapping([YAMLMappingEntry])
    case sequence([YAMLNode])
  }

  public var content: Content
  /// Where the node starts: the first character of a scalar, the first key of a block
  /// mapping, the `-` of a block sequence, or the opening bracket of a flow collection.
  public var location: SourceLocation

  public init(_ content: Content, at location: SourceLocation) {
    self.content = content
    self.location = location
  }

  /// The scalar, when this node is one.
  public var scalar: YAMLScalar? {
    if case .scalar(let s) = content { return s }
    return nil
  }

  /// The mapping entries in document order, when this node is a mapping.
  public var mapping: [YAMLMappingEntry]? {
    if case .mapping(let m) = content { return m }
    return nil
  }

  /// The items, when this node is a sequence.
  public var sequence: [YAMLNode]? {
    if case .sequence(let s) = content { return s }
    return nil
  }

  /// A short noun for error messages: "a mapping", "a list", "a scalar".
  public var kindDescription: String {
    switch content {
    case .scalar(let s): return s.isNull ? "an empty value" : "a scalar"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    }
  }
}

/// One `key: value` pair. Keys are always scalars in YAML-lite.
public struct YAMLMappingEntry: Sendable, Hashable {
  public var key: YAMLScalar
  public var value: YAMLNode

  public init(key: YAMLScalar, value: YAMLNode) {
    self.key = key
    self.value = value
  }
}

/// A scalar with its source text already unescaped, and how it was written.
///
/// The style matters: a plain `yes` is a boolean to YAML 1.1 parsers, a quoted `'yes'` is a
/// string. `resolved` applies PyYAML's resolution rules to plain scalars.
public struct YAMLScalar: Sendable, Hashable {
  public enum Style: Sendable, Hashable {
    case plain
    case singleQuoted
    case doubleQuoted
  }

  /// The value after unescaping quotes and folding flow line breaks.
  public var text: String
  public var style: Style
  public var location: SourceLocation

  public init(_ text: String, style: Style, at location: SourceLocation) {
    self.text = text
    self.style = style
    self.location = location
  }

  /// True for a plain scalar YAML reads as null (`~`, `null`, or nothing at all).
  public var isNull: Bool {
    if case .null = resolved { return true }
    return false
  }
}
