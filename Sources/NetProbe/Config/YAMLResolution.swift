/// What a YAML 1.1 reader makes of a scalar: the type PyYAML's `safe_load` gives it.
///
/// Operators test their files with whatever YAML tool they have, and most of those follow
/// YAML 1.1, where a plain `no` is `false` and `010` is `8`. Resolving exactly as PyYAML's
/// SafeLoader does means a value means the same here as in the operator's own tooling.
public enum ResolvedScalar: Sendable, Hashable {
  case null
  case bool(Bool)
  case int(Int)
  /// An integer outside `Int`'s range, as written (sign, base prefix and `_` kept): YAML
  /// integers are unbounded, and a schema should say "out of range", not "not a number".
  case bigInt(String)
  case float(Double)
  /// A date or a date and time, normalised as Python's `isoformat()` writes it
  /// (`2001-12-14`, `2001-12-14T21:59:43.100000-05:00`), so that two spellings of one
  /// instant compare equal. A scalar built by hand with an impossible date keeps its text.
  case timestamp(String)
  case string(String)
}

extension YAMLScalar {
  /// The scalar's type and value under YAML 1.1 (PyYAML SafeLoader) rules. Quoted scalars
  /// are always strings; plain ones go through the implicit resolvers in PyYAML's order.
  ///
  /// A plain `=` or `<<` resolves to a string here: PyYAML gives them tags that it cannot
  /// construct as values (and `<<` merges as a key), so the reader rejects them as values.
  public var resolved: ResolvedScalar {
    guard style == .plain else { return .string(text) }
    return PlainScalarResolver.resolve(text).value
  }

  /// True for a plain scalar that is text to YAML too: a key written without quotes, a
  /// label value that is not `yes`, `1.0` or `~` in disguise.
  public var isPlainString: Bool {
    guard style == .plain, case .string = resolved else { return false }
    return true
  }
}

/// PyYAML's implicit resolvers (`resolver.py`) and SafeConstructor's scalar constructors
/// (`constructor.py`), written out by hand: the regular expressions are small, and a hand
/// matcher runs in linear time with no regex engine to import.
///
/// Besides the value, it reports plain scalars that PyYAML matches as a type but then fails
/// to construct (`0x_`, `2023-13-45`): accepting those would make a file that YAML-lite
/// reads and PyYAML rejects.
enum PlainScalarResolver {
  struct Resolution {
    var value: ResolvedScalar
    /// Why the reader must refuse this plain scalar as a value, or nil.
    var problem: String?
  }

  /// Python 3.11+ refuses `int()` of more decimal digits than this (`sys.int_info`).
  static let maximumDecimalDigits = 4300
  /// 60^13 is the largest power of 60 a Double holds exactly; past that PyYAML's exact
  /// integer base and a Double base could round differently.
  static let maximumSexagesimalParts = 14

  static func resolve(_ text: String) -> Resolution {
    guard let first = text.utf8.first else { return Resolution(value: .null) }
    switch first {
    case UInt8(ascii: "y"), UInt8(ascii: "Y"), UInt8(ascii: "n"), UInt8(ascii: "N"),
      UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"), UInt8(ascii: "F"),
      UInt8(ascii: "o"), UInt8(ascii: "O"):
      if let bool = boolean(text) { return Resolution(value: .bool(bool)) }
      if ["null", "Null", "NULL"].contains(text) { return Resolution(value: .null) }
    case UInt8(ascii: "~"):
      if text == "~" { return Resolution(value: .null) }
    case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "0")...UInt8(ascii: "9"):
      return number(Array(text.utf8), text: text) ?? Resolution(value: .string(text))
    case UInt8(ascii: "<") where text == "<<", UInt8(ascii: "=") where text == "=":
      let problem = "plain '\(text)' has a special meaning in YAML; quote it"
      return Resolution(value: .string(text), problem: problem)
    default:
      break
    }
    return Resolution(value: .string(text))
  }

  private static func boolean(_ text: String) -> Bool? {
    switch text {
    case "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON": true
    case "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF": false
    default: nil
    }
  }

  /// Float, then int, then timestamp: the order PyYAML registers them (they never overlap).
  private static func number(_ bytes: [UInt8], text: String) -> Resolution? {
    if let float = FloatSyntax.match(bytes) { return float.resolution(text: text) }
    if let int = IntSyntax.match(bytes) { return int.resolution(bytes, text: text) }
    if let timestamp = TimestampSyntax.match(bytes) { return timestamp.resolution(text: text) }
    return nil
  }
}

// MARK: - Lexical helpers

extension UInt8 {
  fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
  fileprivate var isSign: Bool { self == UInt8(ascii: "-") || self == UInt8(ascii: "+") }
  fileprivate var isUnderscore: Bool { self == UInt8(ascii: "_") }
  fileprivate var digitValue: Int { Int(self) - 48 }
}

/// A cursor over ASCII bytes with the few steps the resolver patterns need.
private struct ByteCursor {
  let bytes: [UInt8]
  var index = 0

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  var atEnd: Bool { index == bytes.count }
  var current: UInt8? { index < bytes.count ? bytes[index] : nil }

  func peek(_ offset: Int) -> UInt8? {
    index + offset < bytes.count ? bytes[index + offset] : nil
  }

  mutating func take(_ byte: Character) -> Bool {
    guard current == byte.asciiValue else { return false }
    index += 1
    return true
  }

  mutating func takeSign() -> Bool {
    guard current?.isSign == true else { return false }
    index += 1
    return true
  }

  /// Consumes bytes while `predicate` holds; returns how many.
  @discardableResult
  mutating func skip(while predicate: (UInt8) -> Bool) -> Int {
    let start = index
    while let byte = current, predicate(byte) { index += 1 }
    return index - start
  }

  /// `[0-9]{min,max}` at the cursor; returns the value, or nil without moving.
  mutating func digits(min: Int, max: Int) -> Int? {
    var count = 0
    var value = 0
    while count < max, let byte = peek(count), byte.isDigit {
      value = value * 10 + byte.digitValue
      count += 1
    }
    guard count >= min else { return nil }
    index += count
    return value
  }

  /// One sexagesimal group `:[0-5]?[0-9]`. Greedy is exact here: a group is always
  /// followed by `:`, `.` or the end, never by a digit.
  mutating func sexagesimalGroup() -> Bool {
    guard current == UInt8(ascii: ":"), let first = peek(1), first.isDigit else { return false }
    if first <= UInt8(ascii: "5"), let second = peek(2), second.isDigit {
      index += 3
    } else {
      index += 2
    }
    return true
  }
}

// MARK: - Floats

/// `tag:yaml.org,2002:float`:
/// `[-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?`, `\.[0-9][0-9_]*([eE][-+][0-9]+)?`,
/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`, `[-+]?\.(inf|Inf|INF)`, `\.(nan|NaN|NAN)`.
private enum FloatSyntax {
  case decimal
  case sexagesimal
  case infinity(negative: Bool)
  case nan

  static func match(_ bytes: [UInt8]) -> FloatSyntax? {
    var cursor = ByteCursor(bytes)
    let signed = cursor.takeSign()
    let rest = String(decoding: bytes[cursor.index...], as: UTF8.self)
    if [".inf", ".Inf", ".INF"].contains(rest) {
      return .infinity(negative: bytes.first == UInt8(ascii: "-"))
    }
    if !signed, [".nan", ".NaN", ".NAN"].contains(rest) { return .nan }
    if !signed, cursor.take(".") {
      guard cursor.current?.isDigit == true else { return nil }
      cursor.skip { $0.isDigit || $0.isUnderscore }
      return exponentThenEnd(&cursor) ? .decimal : nil
    }
    guard cursor.current?.isDigit == true else { return nil }
    cursor.skip { $0.isDigit || $0.isUnderscore }
    if cursor.take(".") {
      cursor.skip { $0.isDigit || $0.isUnderscore }
      return exponentThenEnd(&cursor) ? .decimal : nil
    }
    guard cursor.sexagesimalGroup() else { return nil }
    while cursor.sexagesimalGroup() {}
    guard cursor.take(".") else { return nil }
    cursor.skip { $0.isDigit || $0.isUnderscore }
    return cursor.atEnd ? .sexagesimal : nil
  }

  private static func exponentThenEnd(_ cursor: inout ByteCursor) -> Bool {
    if cursor.take("e") || cursor.take("E") {
      guard cursor.takeSign(), cursor.skip(while: \.isDigit) > 0 else { return false }
    }
    return cursor.atEnd
  }

  /// `construct_yaml_float`: drop `_`, lower-case, then `float()` (or the base-60 sum).
  func resolution(text: String) -> PlainScalarResolver.Resolution {
    switch self {
    case .infinity(let negative):
      return .init(value: .float(negative ? -.infinity : .infinity))
    case .nan:
      return .init(value: .float(.nan))
    case .decimal, .sexagesimal:
      var cleaned = text.filter { $0 != "_" }.lowercased()
      let negative = cleaned.first == "-"
      if cleaned.first == "-" || cleaned.first == "+" { cleaned.removeFirst() }
      let parts = cleaned.split(separator: ":", omittingEmptySubsequences: false)
      if parts.count > PlainScalarResolver.maximumSexagesimalParts {
        let problem = "sexagesimal number '\(text)' has too many ':' parts; quote it if it is text"
        return .init(value: .string(text), problem: problem)
      }
      // Python: value = 0.0; base = 1; for digit in reversed(parts): value += digit*base; base *= 60
      var value = 0.0
      var base = 1.0
      for part in parts.reversed() {
        value += (Double(part) ?? .nan) * base
        base *= 60
      }
      return .init(value: .float(negative ? -value : value))
    }
  }
}

// MARK: - Integers

/// `tag:yaml.org,2002:int`: `[-+]?0b[0-1_]+`, `[-+]?0[0-7_]+`, `[-+]?(0|[1-9][0-9_]*)`,
/// `[-+]?0x[0-9a-fA-F_]+`, `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`.
private enum IntSyntax {
  case binary, octal, decimal, hexadecimal, sexagesimal

  static func match(_ bytes: [UInt8]) -> IntSyntax? {
    var cursor = ByteCursor(bytes)
    _ = cursor.takeSign()
    guard let first = cursor.current, first.isDigit else { return nil }
    if first == UInt8(ascii: "0") {
      cursor.index += 1
      if cursor.take("b") {
        let count = cursor.skip { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "1") || $0.isUnderscore }
        return count > 0 && cursor.atEnd ? .binary : nil
      }
      if cursor.take("x") {
        let count = cursor.skip { $0.isUnderscore || Character(Unicode.Scalar($0)).isHexDigit }
        return count > 0 && cursor.atEnd ? .hexadecimal : nil
      }
      if cursor.atEnd { return .decimal }
      cursor.skip { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7")) || $0.isUnderscore }
      return cursor.atEnd ? .octal : nil
    }
    cursor.skip { $0.isDigit || $0.isUnderscore }
    if cursor.atEnd { return .decimal }
    while cursor.sexagesimalGroup() {}
    return cursor.atEnd ? .sexagesimal : nil
  }

  /// `construct_yaml_int`, with overflow past `Int` reported as `.bigInt`.
  func resolution(_ bytes: [UInt8], text: String) -> PlainScalarResolver.Resolution {
    var digits = bytes.filter { !$0.isUnderscore }
    let negative = digits.first == UInt8(ascii: "-")
    if digits.first?.isSign == true { digits.removeFirst() }
    let magnitude: UInt64?
    switch self {
    case .binary, .hexadecimal:
      let body = digits.dropFirst(2)
      guard !body.isEmpty else {
        // PyYAML matches `0x_`, then fails on int('', 16).
        return .init(value: .string(text), problem: "malformed integer '\(text)'; quote it if it is text")
      }
      magnitude = Self.accumulate(body, radix: self == .binary ? 2 : 16)
    case .octal:
      magnitude = Self.accumulate(digits, radix: 8)
    case .decimal:
      if digits.count > PlainScalarResolver.maximumDecimalDigits { return Self.tooLong(text) }
      magnitude = Self.accumulate(digits, radix: 10)
    case .sexagesimal:
      let parts = digits.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
      if parts[0].count > PlainScalarResolver.maximumDecimalDigits { return Self.tooLong(text) }
      var total: UInt64? = 0
      for part in parts {
        guard let sum = total, let value = Self.accumulate(part, radix: 10) else {
          total = nil
          break
        }
        let (shifted, overflowA) = sum.multipliedReportingOverflow(by: 60)
        let (next, overflowB) = shifted.addingReportingOverflow(value)
        total = overflowA || overflowB ? nil : next
      }
      magnitude = total
    }
    guard let magnitude else { return .init(value: .bigInt(text)) }
    if negative {
      guard magnitude <= UInt64(Int.max) + 1 else { return .init(value: .bigInt(text)) }
      return .init(value: .int(magnitude == UInt64(Int.max) + 1 ? Int.min : -Int(magnitude)))
    }
    guard magnitude <= UInt64(Int.max) else { return .init(value: .bigInt(text)) }
    return .init(value: .int(Int(magnitude)))
  }

  private static func tooLong(_ text: String) -> PlainScalarResolver.Resolution {
    let problem = "integer with more than \(PlainScalarResolver.maximumDecimalDigits) digits; quote it if it is text"
    return .init(value: .bigInt(text), problem: problem)
  }

  /// The value of ASCII digits in `radix`, or nil past `UInt64`.
  private static func accumulate(_ digits: some Collection<UInt8>, radix: UInt64) -> UInt64? {
    var value: UInt64 = 0
    for byte in digits {
      let digit = UInt64(Character(Unicode.Scalar(byte)).hexDigitValue ?? 0)
      let (shifted, overflowA) = value.multipliedReportingOverflow(by: radix)
      let (next, overflowB) = shifted.addingReportingOverflow(digit)
      if overflowA || overflowB { return nil }
      value = next
    }
    return value
  }
}

// MARK: - Timestamps

/// `tag:yaml.org,2002:timestamp`: `YYYY-MM-DD`, or `YYYY-M-D` followed by `T`/`t`/spaces,
/// `H:MM:SS`, an optional `.fraction` and an optional zone (`Z`, `±H`, `±HH:MM`).
private struct TimestampSyntax {
  var year: Int, month: Int, day: Int
  var time: (hour: Int, minute: Int, second: Int, microsecond: Int)?
  /// Offset from UTC in minutes; nil for a naive date-time.
  var zoneMinutes: Int?

  static func match(_ bytes: [UInt8]) -> TimestampSyntax? {
    var cursor = ByteCursor(bytes)
    let isSpace: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
    guard let year = cursor.digits(min: 4, max: 4), cursor.take("-") else { return nil }
    let monthStart = cursor.index
    guard let month = cursor.digits(min: 1, max: 2), cursor.take("-") else { return nil }
    let dayStart = cursor.index
    guard let day = cursor.digits(min: 1, max: 2) else { return nil }
    var result = TimestampSyntax(year: year, month: month, day: day)
    if cursor.atEnd {
      // The date-only form needs two-digit month and day.
      return cursor.index - dayStart == 2 && dayStart - monthStart == 3 ? result : nil
    }
    if !(cursor.take("T") || cursor.take("t")), cursor.skip(while: isSpace) == 0 { return nil }
    guard let hour = cursor.digits(min: 1, max: 2), cursor.take(":"),
      let minute = cursor.digits(min: 2, max: 2), cursor.take(":"),
      let second = cursor.digits(min: 2, max: 2)
    else { return nil }
    var microsecond = 0
    if cursor.take(".") {
      // Python keeps the first six digits, right-padded with zeros.
      var count = 0
      while let byte = cursor.current, byte.isDigit {
        if count < 6 { microsecond = microsecond * 10 + byte.digitValue }
        count += 1
        cursor.index += 1
      }
      for _ in min(count, 6)..<6 { microsecond *= 10 }
    }
    result.time = (hour, minute, second, microsecond)
    if cursor.atEnd { return result }
    cursor.skip(while: isSpace)
    if cursor.take("Z") {
      result.zoneMinutes = 0
    } else {
      let negative = cursor.current == UInt8(ascii: "-")
      guard cursor.takeSign(), let zoneHour = cursor.digits(min: 1, max: 2) else { return nil }
      var zoneMinute = 0
      if cursor.take(":") {
        guard let value = cursor.digits(min: 2, max: 2) else { return nil }
        zoneMinute = value
      }
      let total = zoneHour * 60 + zoneMinute
      result.zoneMinutes = negative ? -total : total
    }
    return cursor.atEnd ? result : nil
  }

  /// `construct_yaml_timestamp` builds a `date` or `datetime`, which raises on impossible
  /// fields; the same checks here, then `isoformat()`.
  func resolution(text: String) -> PlainScalarResolver.Resolution {
    guard isValid else {
      let problem = "invalid date or time '\(text)'; quote it if it is text"
      return .init(value: .timestamp(text), problem: problem)
    }
    var iso = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    if let time {
      iso += "T\(pad(time.hour, 2)):\(pad(time.minute, 2)):\(pad(time.second, 2))"
      if time.microsecond != 0 { iso += ".\(pad(time.microsecond, 6))" }
      if let zoneMinutes {
        let magnitude = abs(zoneMinutes)
        iso += "\(zoneMinutes < 0 ? "-" : "+")\(pad(magnitude / 60, 2)):\(pad(magnitude % 60, 2))"
      }
    }
    return .init(value: .timestamp(iso))
  }

  private var isValid: Bool {
    guard (1...9999).contains(year), (1...12).contains(month) else { return false }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    guard (1...days).contains(day) else { return false }
    if let time {
      guard time.hour < 24, time.minute < 60, time.second < 60 else { return false }
    }
    // datetime.timezone needs an offset strictly inside ±24 hours.
    if let zoneMinutes, abs(zoneMinutes) >= 24 * 60 { return false }
    return true
  }

  private func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
  }
}
