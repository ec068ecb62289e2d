extension YAMLNode {
  /// The resolved tree as compact JSON, keys in document order: the form the conformance
  /// test compares with PyYAML's reading of the same file, and a way to see what a
  /// configuration means with every YAML 1.1 surprise (`no`, `010`, `1:30`) made visible.
  ///
  /// Scalars are written by their resolved type: `null`, `true`, `1`, `1.5` (a float always
  /// has a `.` or an exponent, so it never reads back as an integer), `"text"`. JSON has no
  /// infinities, NaN, dates or unbounded integers; those become one-key objects named after
  /// the YAML tag: `{"!!float":".inf"}` (or `"-.inf"`, `".nan"`),
  /// `{"!!timestamp":"2001-12-14T21:59:43+00:00"}` and `{"!!int":"0x1_0000_0000_0000_0000"}`.
  /// Mapping keys are written as their text: the reader only accepts keys that resolve to
  /// strings. Control characters and U+2028/U+2029 are escaped, so the output is one line.
  public func canonicalJSON() -> String {
    var output = ""
    CanonicalJSONWriter.write(self, into: &output)
    return output
  }
}

private enum CanonicalJSONWriter {
  static func write(_ node: YAMLNode, into output: inout String) {
    switch node.content {
    case .scalar(let scalar):
      write(scalar.resolved, into: &output)
    case .sequence(let items):
      output += "["
      for (index, item) in items.enumerated() {
        if index > 0 { output += "," }
        write(item, into: &output)
      }
      output += "]"
    case .mapping(let entries):
      output += "{"
      for (index, entry) in entries.enumerated() {
        if index > 0 { output += "," }
        writeString(entry.key.text, into: &output)
        output += ":"
        write(entry.value, into: &output)
      }
      output += "}"
    }
  }

  static func write(_ value: ResolvedScalar, into output: inout String) {
    switch value {
    case .null: output += "null"
    case .bool(let bool): output += bool ? "true" : "false"
    case .int(let int): output += String(int)
    case .bigInt(let text): tagged("!!int", text, into: &output)
    case .float(let float) where float.isNaN: tagged("!!float", ".nan", into: &output)
    case .float(let float) where float.isInfinite: tagged("!!float", float < 0 ? "-.inf" : ".inf", into: &output)
    // Swift's shortest round-trip form: "1.0", "0.1", "1e+16", "-0.0", all valid JSON.
    case .float(let float): output += float.description
    case .timestamp(let text): tagged("!!timestamp", text, into: &output)
    case .string(let text): writeString(text, into: &output)
    }
  }

  static func tagged(_ tag: String, _ text: String, into output: inout String) {
    output += "{"
    writeString(tag, into: &output)
    output += ":"
    writeString(text, into: &output)
    output += "}"
  }

  static func writeString(_ text: String, into output: inout String) {
    output.appendJSONString(text)
  }
}
