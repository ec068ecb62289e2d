/// Parsers for the value kinds of the config file that YAML itself does not type:
/// durations, DNS names, interface names and label names.
public enum ConfigValues {
  /// Parses `250ms`, `1s`, `1m30s`, `1.5s`, `2h`, `1d` (units ns, us, µs, ms, s, m, h, d,
  /// combined largest first as Prometheus writes them). Returns nil for anything else,
  /// including a bare number: a unit is always required.
  public static func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Double)] = [
      ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400),
    ]
    var rest = Substring(text)
    var total = 0.0
    var lastScale = Double.infinity
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
      let number = rest.prefix { $0.isASCIIDigit || $0 == "." }
      guard !number.isEmpty, number.first != ".", number.last != ".",
        number.filter({ $0 == "." }).count <= 1, let value = Double(number)
      else { return nil }
      rest = rest.dropFirst(number.count)
      let unitText = rest.prefix { !$0.isASCIIDigit && $0 != "." }
      // "ms" must win over "m": match the whole run of letters.
      guard let (_, scale) = units.first(where: { $0.0 == unitText }), scale < lastScale else { return nil }
      lastScale = scale
      total += value * scale
      rest = rest.dropFirst(unitText.count)
    }
    guard total.isFinite, total < 1e9 else { return nil }
    let nanoseconds = (total * 1e9).rounded()
    return .nanoseconds(Int64(nanoseconds))
  }

  /// The shortest text `parseDuration` reads back as the same duration: `1m30s`, `250ms`.
  public static func formatDuration(_ duration: Duration) -> String {
    var nanoseconds =
      Int64(duration.components.seconds) * 1_000_000_000
      + duration.components.attoseconds / 1_000_000_000
    if nanoseconds == 0 { return "0s" }
    var text = ""
    for (unit, size) in [
      ("d", Int64(86_400_000_000_000)), ("h", 3_600_000_000_000), ("m", 60_000_000_000),
      ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("ns", 1),
    ]
    where nanoseconds >= size {
      text += "\(nanoseconds / size)\(unit)"
      nanoseconds %= size
    }
    return text
  }

  /// A DNS host name (RFC 1123): labels of letters, digits, `-` and `_`, 1 to 63 bytes,
  /// not starting or ending with `-`, 253 bytes in all, an optional final dot.
  public static func isHostName(_ text: String) -> Bool {
    var name = Substring(text)
    if name.hasSuffix(".") { name = name.dropLast() }
    guard !name.isEmpty, name.utf8.count <= 253 else { return false }
    let labels = name.split(separator: ".", omittingEmptySubsequences: false)
    // An all-numeric last label would be a mistyped IPv4 address, not a name.
    if let last = labels.last, last.allSatisfy(\.isASCIIDigit) { return false }
    return labels.allSatisfy { label in
      (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
        && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
  }

  /// A Linux interface name: 1 to 15 bytes (IFNAMSIZ - 1), no `/`, `:`, whitespace or NUL.
  public static func isInterfaceName(_ text: String) -> Bool {
    (1...15).contains(text.utf8.count)
      && text.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0 != "/" && $0 != ":" && $0.value != 0x7F }
  }

  /// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
  public static func isLabelName(_ text: String) -> Bool {
    guard let first = text.unicodeScalars.first, !text.hasPrefix("__") else { return false }
    let isLetter: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || $0 == "_" }
    return isLetter(first) && text.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) }
  }

  /// Values shown in messages are cut to this many characters.
  public static let shownLength = 80

  /// A value from the file as an error message shows it: on one line (controls escaped),
  /// and cut after `shownLength` characters with its full length in bytes, so a 10 MB
  /// value makes a one-line message, not 10 MB of output.
  public static func shown(_ text: String) -> String {
    var result = ""
    var count = 0
    for scalar in text.unicodeScalars {
      if count == shownLength { return result + "… (\(text.utf8.count) bytes)" }
      result += scalar.value < 0x20 || scalar.value == 0x7F ? scalar.escaped(asASCII: true) : String(scalar)
      count += 1
    }
    return result
  }

  /// The candidate closest to `word` by edit distance, when close enough to be a typo:
  /// one edit for short words, up to three for long ones.
  public static func suggestion(for word: String, among candidates: [String]) -> String? {
    // At most three edits apart, so a longer word has no suggestion; checked first, as the
    // distance table is words × candidate long (a 10 MB value would need gigabytes).
    let longest = candidates.map(\.unicodeScalars.count).max() ?? 0
    guard word.utf8.count <= 4 * (longest + 3) || word.unicodeScalars.count <= longest + 3 else { return nil }
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0)) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    let limit = max(1, min(3, max(word.count, best.0.count) / 3))
    return best.1 <= limit ? best.0 : nil
  }

  /// Optimal string alignment distance over Unicode scalars: insertions, deletions,
  /// substitutions and transpositions of neighbours (`hots` → `host`) cost one each.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { table[i][0] = i }
    for j in 0...b.count { table[0][j] = j }
    for i in 1...a.count {
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
        if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
          table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
        }
      }
    }
    return table[a.count][b.count]
  }
}
