/// The few string operations the exporter needs from outside the standard library, so
/// that it depends on FoundationEssentials only (see `SystemThread`).
extension StringProtocol {
  /// Without the leading and trailing characters for which `isTrimmed` holds.
  func trimming(_ isTrimmed: (Character) -> Bool) -> String {
    guard let first = firstIndex(where: { !isTrimmed($0) }), let last = lastIndex(where: { !isTrimmed($0) })
    else { return "" }
    return String(self[first...last])
  }

  /// Without leading and trailing spaces, tabs, carriage returns and newlines.
  func trimmingWhitespace() -> String { trimming(\.isWhitespace) }
}

extension String {
  /// Appends `text` as a JSON string literal (RFC 8259): quotes, backslashes and controls
  /// escaped, and also DEL, C1 controls and U+2028/U+2029, which line-based tools would
  /// split on. One encoder for the JSON logs, the config's JSON form and the status API.
  ///
  /// - Parameter escapingAngleBrackets: also writes `<` as `\u003c`, for JSON served over
  ///   HTTP (`/api/v1/status`): a browser that sniffs it as HTML, or a page that inlines it
  ///   in a `<script>`, then never meets a tag from a target's name or label.
  mutating func appendJSONString(_ text: String, escapingAngleBrackets: Bool = false) {
    self += "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": self += "\\\""
      case "\\": self += "\\\\"
      case "\n": self += "\\n"
      case "\r": self += "\\r"
      case "\t": self += "\\t"
      case "<" where escapingAngleBrackets: self += "\\u003c"
      case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029:
        let hex = String(scalar.value, radix: 16)
        self += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default:
        unicodeScalars.append(scalar)
      }
    }
    self += "\""
  }
}
