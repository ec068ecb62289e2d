/// Reads typed values out of YAML nodes, collecting a diagnostic for every problem instead
/// of stopping at the first, so one `--check-config` run lists everything to fix.
struct SchemaReader {
  private(set) var diagnostics: [ConfigDiagnostic] = []
  /// Checks the files the configuration names; nil leaves them unchecked.
  var files: NamedFileCheck?

  mutating func error(_ location: SourceLocation, _ message: String) {
    diagnostics.append(ConfigDiagnostic(location, message))
  }

  /// The entries of a mapping node by key, after reporting keys not in `allowed` (with a
  /// suggestion when one is close). `path` names the mapping in messages: `targets[2]`.
  mutating func mapping(_ node: YAMLNode, _ path: String, allowed: [String]) -> [String: YAMLMappingEntry]? {
    guard let entries = node.mapping else {
      error(node.location, "\(path) must be a mapping, got \(node.kindDescription)")
      return nil
    }
    var byKey: [String: YAMLMappingEntry] = [:]
    for entry in entries {
      let key = entry.key.text
      guard allowed.contains(key) else {
        var message = "unknown key '\(ConfigValues.shown(key))' in \(path)"
        if let guess = ConfigValues.suggestion(for: key, among: allowed) { message += " (did you mean '\(guess)'?)" }
        error(entry.key.location, message)
        continue
      }
      byKey[key] = entry
    }
    return byKey
  }

  /// The items of a list node; `path` names it in messages.
  mutating func list(_ node: YAMLNode, _ path: String) -> [YAMLNode]? {
    if let items = node.sequence { return items }
    if node.scalar?.isNull == true { return [] }
    error(node.location, "\(path) must be a list, got \(node.kindDescription)")
    return nil
  }

  mutating func duration(_ node: YAMLNode, min: Duration = .nanoseconds(1), max: Duration = .seconds(86_400 * 7)) -> Duration? {
    let shown = node.scalar?.text ?? node.kindDescription
    guard let scalar = node.scalar, let value = ConfigValues.parseDuration(scalar.text) else {
      error(node.location, "expected a duration such as 500ms, 1s or 2m, got '\(ConfigValues.shown(shown))'")
      return nil
    }
    guard value >= min, value <= max else {
      error(
        node.location,
        "duration \(ConfigValues.shown(scalar.text)) out of range: expected from \(ConfigValues.formatDuration(min)) to \(ConfigValues.formatDuration(max))"
      )
      return nil
    }
    return value
  }

  mutating func integer(_ node: YAMLNode, _ range: ClosedRange<Int>) -> Int? {
    if let scalar = node.scalar, case .bigInt = scalar.resolved {
      error(
        node.location,
        "\(ConfigValues.shown(scalar.text)) out of range: expected an integer from \(range.lowerBound) to \(range.upperBound)")
      return nil
    }
    guard let scalar = node.scalar, case .int(let value) = scalar.resolved else {
      error(
        node.location,
        "expected an integer from \(range.lowerBound) to \(range.upperBound), got '\(ConfigValues.shown(node.scalar?.text ?? node.kindDescription))'"
      )
      return nil
    }
    guard range.contains(value) else {
      error(
        node.location,
        "\(ConfigValues.shown(scalar.text)) out of range: expected an integer from \(range.lowerBound) to \(range.upperBound)")
      return nil
    }
    return value
  }

  mutating func number(_ node: YAMLNode, above lower: Double, upTo upper: Double) -> Double? {
    let value: Double?
    switch node.scalar?.resolved {
    case .int(let int): value = Double(int)
    case .float(let float) where float.isFinite: value = float
    default: value = nil
    }
    guard let value else {
      error(node.location, "expected a number, got '\(ConfigValues.shown(node.scalar?.text ?? node.kindDescription))'")
      return nil
    }
    guard value > lower, value <= upper else {
      error(
        node.location,
        "\(ConfigValues.shown(node.scalar!.text)) out of range: expected a number above \(Exposition.formatValue(lower)) and at most \(Exposition.formatValue(upper))"
      )
      return nil
    }
    return value
  }

  mutating func boolean(_ node: YAMLNode) -> Bool? {
    guard let scalar = node.scalar, case .bool(let value) = scalar.resolved else {
      error(node.location, "expected true or false, got '\(ConfigValues.shown(node.scalar?.text ?? node.kindDescription))'")
      return nil
    }
    return value
  }

  /// A text value. A plain scalar that YAML reads as something else (a boolean, null, a
  /// date, or a number not written in plain decimal) is refused with advice to quote it:
  /// `country: NO` would otherwise be `false` to every other YAML reader.
  mutating func string(_ node: YAMLNode, allowEmpty: Bool = false) -> String? {
    guard let scalar = node.scalar else {
      error(node.location, "expected a string, got \(node.kindDescription)")
      return nil
    }
    switch scalar.resolved {
    case .string(let text):
      if text.isEmpty && !allowEmpty {
        error(node.location, "expected a non-empty string")
        return nil
      }
      return text
    case .int(let value) where String(value) == scalar.text:
      return scalar.text
    case .float(let value) where value.isFinite && Double(scalar.text) == value && !scalar.text.contains("_"):
      return scalar.text
    case .null where allowEmpty:
      return ""
    case .null:
      error(node.location, "expected a non-empty string")
      return nil
    case .bool:
      error(
        node.location,
        "'\(ConfigValues.shown(scalar.text))' is read as a boolean by YAML; quote it (\"\(ConfigValues.shown(scalar.text))\") if you mean text"
      )
      return nil
    default:
      error(
        node.location,
        "'\(ConfigValues.shown(scalar.text))' is read as a number or date by YAML; quote it (\"\(ConfigValues.shown(scalar.text))\") if you mean text"
      )
      return nil
    }
  }

  mutating func choice<T: RawRepresentable & CaseIterable>(_ node: YAMLNode) -> T? where T.RawValue == String {
    let names = T.allCases.map(\.rawValue)
    guard let scalar = node.scalar, let value = T(rawValue: scalar.text) else {
      let shown = node.scalar?.text ?? node.kindDescription
      var message = "expected one of \(names.joined(separator: ", ")), got '\(ConfigValues.shown(shown))'"
      if let guess = ConfigValues.suggestion(for: shown, among: names) { message += " (did you mean '\(guess)'?)" }
      error(node.location, message)
      return nil
    }
    return value
  }

  mutating func address(_ node: YAMLNode) -> IPAddress? {
    guard let text = string(node) else { return nil }
    guard let address = IPAddress(text) else {
      error(node.location, "expected an IPv4 or IPv6 address, got '\(ConfigValues.shown(text))'")
      return nil
    }
    return address
  }

  /// The path of a file the configuration names (a password or TLS file), refused at its
  /// place in the file when it is a FIFO, a device, a directory or too large.
  mutating func filePath(_ node: YAMLNode) -> String? {
    guard let path = string(node) else { return nil }
    if let problem = files?.refusal(path) {
      error(node.location, problem)
      return nil
    }
    return path
  }

  mutating func interfaceName(_ node: YAMLNode) -> String? {
    guard let text = string(node) else { return nil }
    guard ConfigValues.isInterfaceName(text) else {
      error(node.location, "'\(ConfigValues.shown(text))' is not a network interface name (1 to 15 characters, no '/', ':' or spaces)")
      return nil
    }
    return text
  }

  /// A `{name: value}` mapping of custom labels. `reserved` are the names the exporter
  /// sets itself on the same series.
  mutating func labels(_ node: YAMLNode, _ path: String, reserved: [String]) -> [Label] {
    guard let entries = node.mapping else {
      if node.scalar?.isNull != true {
        error(node.location, "\(path) must be a mapping of label names to values, got \(node.kindDescription)")
      }
      return []
    }
    var labels: [Label] = []
    for entry in entries {
      let name = entry.key.text
      if !ConfigValues.isLabelName(name) {
        error(
          entry.key.location, "invalid label name '\(ConfigValues.shown(name))': expected [a-zA-Z_][a-zA-Z0-9_]* not starting with '__'")
        continue
      }
      if ["job", "instance"].contains(name) {
        error(entry.key.location, "label '\(name)' is set by Prometheus when it scrapes; set it in the scrape config instead")
        continue
      }
      if reserved.contains(name) {
        error(entry.key.location, "label '\(name)' is set by the exporter on these series; choose another name")
        continue
      }
      if let value = string(entry.value, allowEmpty: true) { labels.append(Label(name, value)) }
    }
    return labels
  }
}

/// How the schema checks a file the configuration names: given the path as written, the
/// reason it cannot be used, or nil. The loader supplies it, as the check reads the disk
/// and resolves relative paths against the configuration file's directory.
public struct NamedFileCheck: Sendable {
  public var refusal: @Sendable (String) -> String?

  public init(_ refusal: @escaping @Sendable (String) -> String?) { self.refusal = refusal }
}
