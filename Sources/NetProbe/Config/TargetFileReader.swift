/// Reads one target file in Prometheus' `file_sd` format — a list of
/// `{targets: [...], labels: {...}}` groups, JSON or YAML by extension — into targets with
/// the settings of their `target_files` entry.
///
/// What Prometheus does is the rule (discovery/file and targetgroup): unknown keys are
/// errors in both formats, a null group is an error, an empty file or list gives no targets,
/// and labels starting with `__` are meta labels: accepted, never exported (Prometheus drops
/// them after relabelling), but `name_label` may name one. Where the exporter is stricter it
/// is because a ping target is not a scrape target: a target must be a host or an address
/// (a `host:port` as written for Prometheus is accepted and its port ignored, as ICMP has
/// none), and two targets of one name would be one series twice.
public enum TargetFileReader {
  /// No `max_targets*` setting may exceed this: beyond it a file is not a target list but
  /// an accident, and 1,000,000 targets is more than a host can ping each second.
  public static let hardTargetLimit = 1_000_000

  /// The targets of `text`, read as `format`, each with `entry`'s settings and the labels of
  /// its group; or every problem found, with line and column.
  public static func read(_ text: String, format: TargetFileFormat, entry: TargetFilesConfig) -> Result<[TargetConfig], ConfigErrors> {
    let root: YAMLNode
    switch format {
    case .yaml:
      switch YAMLLite.parseReportingAll(text) {
      case .success(let node): root = node
      case .failure(let errors): return .failure(errors)
      }
    case .json:
      do throws(ConfigDiagnostic) {
        root = try JSONLite.parse(text)
      } catch {
        return .failure(ConfigErrors([error]))
      }
    }
    var reader = SchemaReader()
    let targets = decode(root, format: format, entry: entry, &reader)
    if reader.diagnostics.isEmpty { return .success(targets) }
    return .failure(ConfigErrors(reader.diagnostics.sorted { $0.location < $1.location }))
  }

  /// Whether `name` is a label name a file may carry: Prometheus' `[a-zA-Z_][a-zA-Z0-9_]*`,
  /// `__` meta labels included.
  public static func isFileLabelName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first else { return false }
    func isLetter(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" }
    return isLetter(first) && name.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) }
  }

  /// The host of a target as written in a file: an IP address, a DNS name, either with a
  /// `:port` (`[v6]:port` for IPv6), or nil when it is none of these.
  public static func host(of target: String) -> String? {
    if IPAddress(target) != nil { return target }
    var host = Substring(target)
    if target.hasPrefix("["), let close = target.firstIndex(of: "]") {
      let rest = target[target.index(after: close)...]
      guard isPort(rest) else { return nil }
      host = target[target.index(after: target.startIndex)..<close]
      guard let address = IPAddress(String(host)), address.family == .ip6 else { return nil }
      return String(host)
    }
    if let colon = target.firstIndex(of: ":") {
      guard isPort(target[colon...]) else { return nil }
      host = target[..<colon]
    }
    let text = String(host)
    return IPAddress(text) != nil || ConfigValues.isHostName(text) ? text : nil
  }

  /// `:` and a port number 0–65535.
  private static func isPort(_ text: Substring) -> Bool {
    guard text.first == ":" else { return false }
    let digits = text.dropFirst()
    return (1...5).contains(digits.count) && digits.allSatisfy(\.isASCIIDigit) && Int(digits)! <= 65_535
  }

  static func decode(_ root: YAMLNode, format: TargetFileFormat, entry: TargetFilesConfig, _ reader: inout SchemaReader) -> [TargetConfig] {
    if root.scalar?.isNull == true && format == .yaml { return [] }
    guard let groups = root.sequence else {
      reader.error(root.location, "expected a list of target groups ({targets: [...], labels: {...}}), got \(root.kindDescription)")
      return []
    }
    var result: [TargetConfig] = []
    var firstByName: [String: SourceLocation] = [:]
    for (index, group) in groups.enumerated() {
      let path = "group \(index + 1)"
      if group.scalar?.isNull == true {
        reader.error(group.location, "\(path) is null: expected {targets: [...], labels: {...}}")
        continue
      }
      guard let map = reader.mapping(group, path, allowed: ["targets", "labels"]) else { continue }
      var labels: [Label] = []
      var name: String?
      var labelsOK = true
      if let node = map["labels"]?.value {
        (labels, name, labelsOK) = groupLabels(node, path: path, format: format, entry: entry, &reader)
      }
      let options: ProbeOptions
      if labels.isEmpty {
        options = entry.options
      } else {
        var copy = entry.options
        copy.labels = copy.labels.filter { label in !labels.contains { $0.name == label.name } } + labels
        options = copy
      }
      guard let targetsNode = map["targets"]?.value, let items = reader.list(targetsNode, "\(path).targets") else { continue }
      if name != nil && items.count > 1 {
        reader.error(
          targetsNode.location,
          "\(path) names its targets by label '\(entry.nameLabel ?? "")', so it can hold only one target: \(items.count) would share one name"
        )
        continue
      }
      for item in items {
        guard let text = scalarText(item, format: format, what: "a target (a host or an address)", &reader) else { continue }
        guard let host = host(of: text) else {
          reader.error(
            item.location, "'\(ConfigValues.shown(text))' is not a host: expected an IP address or a DNS name, optionally with :port")
          continue
        }
        if let literal = IPAddress(host) {
          if literal.isMulticast || literal.isUnspecified {
            reader.error(item.location, "cannot ping \(literal): expected a unicast address")
            continue
          }
          if options.family != .auto && options.family.rawValue != literal.family.rawValue {
            reader.error(
              item.location, "\(host) is an \(literal.family.rawValue) address but this entry sets family \(options.family.rawValue)")
            continue
          }
          if let source = options.source, source.family != literal.family {
            reader.error(
              item.location, "\(host) is \(literal.family.rawValue) but this entry's source \(source) is \(source.family.rawValue)")
            continue
          }
        }
        guard labelsOK else { continue }
        let targetName = name ?? host
        if let first = firstByName[targetName] {
          reader.error(item.location, "duplicate target '\(ConfigValues.shown(targetName))' (first at \(first))")
          continue
        }
        firstByName[targetName] = item.location
        result.append(TargetConfig(name: targetName, host: host, options: options, location: item.location))
      }
    }
    if result.count > entry.maxTargetsPerFile {
      reader.error(
        root.location,
        "\(result.count) targets, over max_targets_per_file (\(entry.maxTargetsPerFile)) of the target_files entry at \(entry.location)")
    }
    return result
  }

  /// The labels a group gives its targets (meta and name labels left out), the name its
  /// `name_label` gives, and whether they are all valid.
  private static func groupLabels(
    _ node: YAMLNode, path: String, format: TargetFileFormat, entry: TargetFilesConfig,
    _ reader: inout SchemaReader
  ) -> ([Label], String?, Bool) {
    if node.scalar?.isNull == true { return ([], nil, true) }
    guard let entries = node.mapping else {
      reader.error(node.location, "\(path).labels must be a mapping of label names to values, got \(node.kindDescription)")
      return ([], nil, false)
    }
    var labels: [Label] = []
    var name: String?
    var ok = true
    for item in entries {
      let key = item.key.text
      guard isFileLabelName(key) else {
        reader.error(item.key.location, "invalid label name '\(ConfigValues.shown(key))': expected [a-zA-Z_][a-zA-Z0-9_]*")
        ok = false
        continue
      }
      guard let value = scalarText(item.value, format: format, what: "a label value", allowNull: true, &reader) else {
        ok = false
        continue
      }
      if key == entry.nameLabel {
        if value.isEmpty {
          reader.error(item.value.location, "the name label '\(key)' is empty: expected the target's name")
          ok = false
        } else {
          name = value
        }
        continue
      }
      if key.hasPrefix("__") { continue }
      if ["job", "instance"].contains(key) || ConfigSchema.reservedTargetLabels.contains(key) {
        reader.error(
          item.key.location,
          "label '\(key)' is set by \(["job", "instance"].contains(key) ? "Prometheus when it scrapes" : "the exporter on target series"); rename it (or prefix it with __ to keep it out of the series)"
        )
        ok = false
        continue
      }
      labels.append(Label(key, value))
    }
    return (labels, name, ok)
  }

  /// A string where Prometheus expects one. JSON wants a string; YAML takes any scalar's
  /// text, as go-yaml does for a string field (`port: 80` is the label value "80").
  private static func scalarText(
    _ node: YAMLNode, format: TargetFileFormat, what: String, allowNull: Bool = false,
    _ reader: inout SchemaReader
  ) -> String? {
    guard let scalar = node.scalar else {
      reader.error(node.location, "expected \(what), got \(node.kindDescription)")
      return nil
    }
    switch format {
    case .json where scalar.style != .doubleQuoted:
      if scalar.text == "null" && allowNull { return "" }
      reader.error(node.location, "expected \(what) as a JSON string, got \(scalar.text)")
      return nil
    case .yaml where scalar.isNull:
      if allowNull { return "" }
      reader.error(node.location, "expected \(what), got an empty value")
      return nil
    default:
      if scalar.text.isEmpty && !allowNull {
        reader.error(node.location, "expected \(what), got an empty string")
        return nil
      }
      return scalar.text
    }
  }
}
