import Testing

@testable import NetProbe

/// Plain scalars resolve exactly as PyYAML's SafeLoader resolves them (YAML 1.1), so a
/// value means here what it means in the operator's own YAML tools.
@Suite struct YAMLResolutionTests {
  struct Example: Sendable, CustomTestStringConvertible {
    let text: String
    let expected: ResolvedScalar
    init(_ text: String, _ expected: ResolvedScalar) {
      self.text = text
      self.expected = expected
    }
    var testDescription: String { text.debugDescription }
  }

  static let booleans: [Example] =
    ["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].map { Example($0, .bool(true)) }
    + ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].map { Example($0, .bool(false)) }

  static let nulls: [Example] = ["", "~", "null", "Null", "NULL"].map { Example($0, .null) }

  static let integers: [Example] = [
    Example("0", .int(0)), Example("-0", .int(0)), Example("+0", .int(0)),
    Example("42", .int(42)), Example("+42", .int(42)), Example("-42", .int(-42)),
    Example("1_000_000", .int(1_000_000)), Example("1__0", .int(10)),
    Example("010", .int(8)), Example("0755", .int(493)), Example("-0_17", .int(-15)),
    Example("00", .int(0)), Example("0_", .int(0)),
    Example("0b1010", .int(10)), Example("-0b1_1", .int(-3)), Example("0b_1", .int(1)),
    Example("0x1F", .int(31)), Example("0xff", .int(255)), Example("-0x_10", .int(-16)),
    Example("1:30", .int(90)), Example("-1:30", .int(-90)), Example("190:20:30", .int(685_230)),
    Example("1_0:30", .int(630)), Example("1:0:5", .int(3605)),
    Example("9223372036854775807", .int(Int.max)), Example("-9223372036854775808", .int(Int.min)),
    Example("0x7FFF_FFFF_FFFF_FFFF", .int(Int.max)),
    Example("9223372036854775808", .bigInt("9223372036854775808")),
    Example("-9223372036854775809", .bigInt("-9223372036854775809")),
    Example("0x1_0000_0000_0000_0000", .bigInt("0x1_0000_0000_0000_0000")),
    Example("0b" + String(repeating: "1", count: 64), .bigInt("0b" + String(repeating: "1", count: 64))),
  ]

  static let floats: [Example] = [
    Example("1.5", .float(1.5)), Example("-2.25", .float(-2.25)), Example("+2.5", .float(2.5)),
    Example("1.", .float(1)), Example(".5", .float(0.5)), Example("0.", .float(0)),
    Example("6.02e+23", .float(6.02e23)), Example("1.0E-3", .float(0.001)), Example("1.e+5", .float(100_000)),
    Example("1_000.000_1", .float(1000.0001)), Example("1.5_", .float(1.5)),
    Example("190:20:30.15", .float(685_230.15)), Example("-1:30.5", .float(-90.5)),
    Example(".inf", .float(.infinity)), Example(".Inf", .float(.infinity)), Example("+.INF", .float(.infinity)),
    Example("-.inf", .float(-.infinity)), Example("1.0e+400", .float(.infinity)),
    Example("0.1", .float(0.1)), Example("3.14159265358979323846", .float(3.141592653589793)),
  ]

  static let timestamps: [Example] = [
    Example("2001-12-14", .timestamp("2001-12-14")),
    Example("2024-02-29", .timestamp("2024-02-29")),
    Example("2001-12-14T21:59:43.10Z", .timestamp("2001-12-14T21:59:43.100000+00:00")),
    Example("2001-12-14t21:59:43.10-05:00", .timestamp("2001-12-14T21:59:43.100000-05:00")),
    Example("2001-12-14 21:59:43.10 -5", .timestamp("2001-12-14T21:59:43.100000-05:00")),
    Example("2001-12-14  21:59:43.10   +05:30", .timestamp("2001-12-14T21:59:43.100000+05:30")),
    Example("2001-12-14 2:59:43", .timestamp("2001-12-14T02:59:43")),
    Example("2001-1-2 3:04:05", .timestamp("2001-01-02T03:04:05")),
    Example("2001-12-14T21:59:43.1234567", .timestamp("2001-12-14T21:59:43.123456")),
    Example("2001-12-14T21:59:43.", .timestamp("2001-12-14T21:59:43")),
    Example("2001-12-14T21:59:43.000", .timestamp("2001-12-14T21:59:43")),
    Example("2001-12-14T21:59:43+01:99", .timestamp("2001-12-14T21:59:43+02:39")),
    Example("2001-12-14T21:59:43-0", .timestamp("2001-12-14T21:59:43+00:00")),
  ]

  /// Look-alikes that YAML 1.1 reads as text.
  static let strings: [Example] = [
    "y", "n", "yEs", "nULL", "none", "0o17", "08", "0x", "0b", "0X1F", "1:60", "01:30", "1e5", "1.0e5",
    "+.5", "..5", "1.2.3", ".inf.", "+.nan", "-.NaN", "2001-1-2", "2001-12-14T21:59", "20011-12-14",
    "2001-12-14 21:59:43 +", "12abc", "::1", "fe80::1", "-x", "a:b", "é", "٣", "１２",
  ].map { Example($0, .string($0)) }

  @Test(arguments: booleans + nulls + integers + floats + timestamps + strings)
  func resolvesPlain(_ example: Example) {
    #expect(plain(example.text).resolved == example.expected)
  }

  @Test func notANumber() {
    for text in [".nan", ".NaN", ".NAN"] {
      guard case .float(let value) = plain(text).resolved else {
        Issue.record("\(text) is not a float")
        continue
      }
      #expect(value.isNaN)
    }
  }

  @Test func negativeZeroKeepsItsSign() {
    guard case .float(let value) = plain("-0.0").resolved else {
      Issue.record("-0.0 is not a float")
      return
    }
    #expect(value == 0 && value.sign == .minus)
  }

  @Test func quotedScalarsAreAlwaysStrings() {
    for text in ["yes", "~", "", "010", "1.5", ".inf", "2001-12-14", "null"] {
      #expect(YAMLScalar(text, style: .singleQuoted, at: origin).resolved == .string(text))
      #expect(YAMLScalar(text, style: .doubleQuoted, at: origin).resolved == .string(text))
    }
  }

  @Test func plainStrings() {
    #expect(plain("eth0").isPlainString)
    #expect(plain("2001:db8::1").isPlainString)
    #expect(!plain("no").isPlainString)
    #expect(!plain("1").isPlainString)
    #expect(!plain("").isPlainString)
    #expect(!YAMLScalar("text", style: .doubleQuoted, at: origin).isPlainString)
  }

  @Test func nullsAreNull() {
    #expect(plain("").isNull)
    #expect(plain("~").isNull)
    #expect(!plain("none").isNull)
    #expect(!YAMLScalar("", style: .singleQuoted, at: origin).isNull)
  }

  /// The reader refuses these; a scalar built by hand still resolves to something sensible.
  @Test func scalarsTheReaderRefuses() {
    #expect(plain("=").resolved == .string("="))
    #expect(plain("<<").resolved == .string("<<"))
    #expect(plain("2023-02-30").resolved == .timestamp("2023-02-30"))
    #expect(plain("0x_").resolved == .string("0x_"))
    for text in ["=", "<<", "2023-02-30", "2001-12-14 24:00:00", "2001-12-14 1:00:00 +24", "0000-01-01", "0x_", "-0b__"] {
      #expect(PlainScalarResolver.resolve(text).problem != nil, "\(text)")
    }
    for text in ["2024-02-29", "0x1F", "a=b", "<<<", "2001-12-14 23:59:59 +23:59"] {
      #expect(PlainScalarResolver.resolve(text).problem == nil, "\(text)")
    }
  }

  @Test func canonicalJSONTagsWhatJSONCannotSay() throws {
    let root = try YAMLLite.parse("[.inf, -.inf, .nan, 2001-12-14, 0x1_0000_0000_0000_0000, 1.0, 1, '1', \"a\\\"\\\\\\n\\u0001\\u2028\"]")
    #expect(
      root.canonicalJSON()
        == #"[{"!!float":".inf"},{"!!float":"-.inf"},{"!!float":".nan"},{"!!timestamp":"2001-12-14"},"#
        + #"{"!!int":"0x1_0000_0000_0000_0000"},1.0,1,"1","a\"\\\n\u0001\u2028"]"#)
  }

  let origin = NetProbe.SourceLocation(line: 1, column: 1)

  func plain(_ text: String) -> YAMLScalar {
    YAMLScalar(text, style: .plain, at: origin)
  }
}
