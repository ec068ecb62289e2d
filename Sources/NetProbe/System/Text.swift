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
