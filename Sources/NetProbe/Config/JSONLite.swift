/// A strict JSON reader (RFC 8259) that builds the same tree as the YAML-lite reader, with
/// the line and column of every value, so target files in JSON get `FILE:LINE:COL` errors
/// and are checked by the same code as YAML ones.
///
/// FoundationEssentials has `JSONDecoder` but no `JSONSerialization`, and neither reports
/// where in the text a value was; this is a few hundred lines that the fuzzer covers.
/// Strings become double-quoted scalars and the literals `true`, `false`, `null` and numbers
/// plain ones, so a reader can tell the JSON string `"1"` from the number `1`. Refused,
/// with what was expected: anything RFC 8259 refuses (comments, trailing commas, single
/// quotes, leading zeros, unescaped control characters, lone surrogates), duplicate keys
/// (Go's encoding/json keeps the last silently; one of two targets lists would be lost),
/// nesting deeper than 100 and text after the value.
public enum JSONLite {
  static let maximumDepth = 100

  public static func parse(_ text: String) throws(ConfigDiagnostic) -> YAMLNode {
    var text = text
    text.makeContiguousUTF8()
    let result = text.utf8.withContiguousStorageIfAvailable { bytes -> Result<YAMLNode, ConfigDiagnostic> in
      var reader = JSONLiteReader(bytes: bytes)
      do throws(ConfigDiagnostic) {
        return .success(try reader.document())
      } catch {
        return .failure(error)
      }
    }
    guard let result else { preconditionFailure("a contiguous UTF-8 string has contiguous storage") }
    return try result.get()
  }
}

private struct JSONLiteReader {
  let bytes: UnsafeBufferPointer<UInt8>
  var index = 0
  var line = 1
  var lineStart = 0
  var depth = 0
  /// The column of `columnIndex` on line `columnLine`: locations are asked for in file
  /// order, so each is found by counting on from the last one, not from the start of the
  /// line (a generated file is often one line of 10,000 targets).
  var columnLine = 0
  var columnIndex = 0
  var column = 1

  init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

  mutating func document() throws(ConfigDiagnostic) -> YAMLNode {
    // A byte order mark is allowed before the value, as YAML allows it.
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
      index = 3
      lineStart = 3
    }
    skipWhitespace()
    guard index < bytes.count else { throw fail("the file is empty: expected a JSON list of target groups") }
    let node = try value()
    skipWhitespace()
    if index < bytes.count { throw fail("unexpected \(shownByte()) after the end of the JSON value") }
    return node
  }

  mutating func location(_ at: Int) -> SourceLocation {
    if columnLine != line || at < columnIndex {
      columnLine = line
      columnIndex = lineStart
      column = 1
    }
    // Columns count Unicode scalars: continuation bytes are skipped.
    while columnIndex < at {
      if bytes[columnIndex] & 0xC0 != 0x80 { column += 1 }
      columnIndex += 1
    }
    return SourceLocation(line: line, column: column)
  }

  mutating func fail(_ message: String, at: Int? = nil) -> ConfigDiagnostic {
    ConfigDiagnostic(location(at ?? index), message)
  }

  func shownByte() -> String {
    guard index < bytes.count else { return "end of file" }
    let byte = bytes[index]
    if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
    return "byte 0x\(String(byte, radix: 16, uppercase: true))"
  }

  mutating func skipWhitespace() {
    while index < bytes.count {
      switch bytes[index] {
      case 0x20, 0x09, 0x0D: index += 1
      case 0x0A:
        index += 1
        line += 1
        lineStart = index
      default: return
      }
    }
  }

  mutating func value() throws(ConfigDiagnostic) -> YAMLNode {
    guard index < bytes.count else { throw fail("unexpected end of file: expected a value") }
    let start = location(index)
    switch bytes[index] {
    case UInt8(ascii: "{"): return try object()
    case UInt8(ascii: "["): return try array()
    case UInt8(ascii: "\""): return YAMLNode(.scalar(try string()), at: start)
    case UInt8(ascii: "t"): return try literal("true", start)
    case UInt8(ascii: "f"): return try literal("false", start)
    case UInt8(ascii: "n"): return try literal("null", start)
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number(start)
    case UInt8(ascii: "/"): throw fail("JSON has no comments")
    case UInt8(ascii: "'"): throw fail("JSON strings take double quotes (\"), not single quotes")
    default: throw fail("unexpected \(shownByte()): expected a JSON value (object, list, string, number, true, false or null)")
    }
  }

  mutating func enter() throws(ConfigDiagnostic) {
    depth += 1
    if depth > JSONLite.maximumDepth { throw fail("nested more than \(JSONLite.maximumDepth) levels deep") }
  }

  mutating func object() throws(ConfigDiagnostic) -> YAMLNode {
    let start = location(index)
    try enter()
    index += 1
    var entries: [YAMLMappingEntry] = []
    var seen: [String: SourceLocation] = [:]
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
      index += 1
      depth -= 1
      return YAMLNode(.mapping(entries), at: start)
    }
    while true {
      skipWhitespace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { throw fail("trailing comma before '}': JSON allows none") }
        throw fail("unexpected \(shownByte()): expected a key in double quotes")
      }
      let key = try string()
      if let first = seen[key.text] {
        throw ConfigDiagnostic(key.location, "duplicate key '\(ConfigValues.shown(key.text))' (first at \(first))")
      }
      seen[key.text] = key.location
      skipWhitespace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
        throw fail("unexpected \(shownByte()): expected ':' after the key")
      }
      index += 1
      skipWhitespace()
      entries.append(YAMLMappingEntry(key: key, value: try value()))
      skipWhitespace()
      guard index < bytes.count else { throw fail("unexpected end of file: expected ',' or '}' to close the object opened at \(start)") }
      if bytes[index] == UInt8(ascii: ",") {
        index += 1
        continue
      }
      guard bytes[index] == UInt8(ascii: "}") else { throw fail("unexpected \(shownByte()): expected ',' or '}'") }
      index += 1
      depth -= 1
      return YAMLNode(.mapping(entries), at: start)
    }
  }

  mutating func array() throws(ConfigDiagnostic) -> YAMLNode {
    let start = location(index)
    try enter()
    index += 1
    var items: [YAMLNode] = []
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
      index += 1
      depth -= 1
      return YAMLNode(.sequence(items), at: start)
    }
    while true {
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") { throw fail("trailing comma before ']': JSON allows none") }
      items.append(try value())
      skipWhitespace()
      guard index < bytes.count else { throw fail("unexpected end of file: expected ',' or ']' to close the list opened at \(start)") }
      if bytes[index] == UInt8(ascii: ",") {
        index += 1
        continue
      }
      guard bytes[index] == UInt8(ascii: "]") else { throw fail("unexpected \(shownByte()): expected ',' or ']'") }
      index += 1
      depth -= 1
      return YAMLNode(.sequence(items), at: start)
    }
  }

  mutating func literal(_ word: String, _ start: SourceLocation) throws(ConfigDiagnostic) -> YAMLNode {
    let expected = Array(word.utf8)
    guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else {
      throw fail("unexpected \(shownByte()): expected a JSON value (strings take double quotes)")
    }
    index += expected.count
    return YAMLNode(.scalar(YAMLScalar(word, style: .plain, at: start)), at: start)
  }

  mutating func number(_ start: SourceLocation) throws(ConfigDiagnostic) -> YAMLNode {
    let begin = index
    func isDigit(_ at: Int) -> Bool { at < bytes.count && bytes[at] >= 0x30 && bytes[at] <= 0x39 }
    if bytes[index] == UInt8(ascii: "-") { index += 1 }
    guard isDigit(index) else { throw fail("expected a digit after '-'") }
    if bytes[index] == UInt8(ascii: "0") {
      index += 1
      if isDigit(index) { throw fail("a JSON number has no leading zeros") }
    } else {
      while isDigit(index) { index += 1 }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      index += 1
      guard isDigit(index) else { throw fail("expected a digit after '.'") }
      while isDigit(index) { index += 1 }
    }
    if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
      guard isDigit(index) else { throw fail("expected a digit in the exponent") }
      while isDigit(index) { index += 1 }
    }
    let text = String(decoding: bytes[begin..<index], as: UTF8.self)
    return YAMLNode(.scalar(YAMLScalar(text, style: .plain, at: start)), at: start)
  }

  mutating func hex4() throws(ConfigDiagnostic) -> UInt32 {
    guard bytes.count - index >= 4 else { throw fail("expected four hex digits after \\u") }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[index]
      let digit: UInt8
      switch byte {
      case 0x30...0x39: digit = byte - 0x30
      case 0x41...0x46: digit = byte - 0x41 + 10
      case 0x61...0x66: digit = byte - 0x61 + 10
      default: throw fail("expected four hex digits after \\u")
      }
      value = value << 4 | UInt32(digit)
      index += 1
    }
    return value
  }

  /// A string at the opening quote. The text is valid UTF-8: the reader got it from a
  /// Swift `String`.
  mutating func string() throws(ConfigDiagnostic) -> YAMLScalar {
    let start = location(index)
    index += 1
    var output: [UInt8] = []
    while true {
      guard index < bytes.count else { throw fail("unexpected end of file: the string opened at \(start) is not closed") }
      let byte = bytes[index]
      switch byte {
      case UInt8(ascii: "\""):
        index += 1
        return YAMLScalar(String(decoding: output, as: UTF8.self), style: .doubleQuoted, at: start)
      case UInt8(ascii: "\\"):
        index += 1
        guard index < bytes.count else { throw fail("unexpected end of file after '\\'") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
          let escapeStart = index - 2
          var code = try hex4()
          if (0xD800...0xDBFF).contains(code) {
            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
              throw fail("a high surrogate \\u\(String(code, radix: 16)) must be followed by a low one", at: escapeStart)
            }
            index += 2
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else {
              throw fail("expected a low surrogate after \\u\(String(code, radix: 16))", at: escapeStart)
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          } else if (0xDC00...0xDFFF).contains(code) {
            throw fail("a lone low surrogate \\u\(String(code, radix: 16)) is not a character", at: escapeStart)
          }
          output.append(contentsOf: Array(String(Character(Unicode.Scalar(code)!)).utf8))
        default:
          throw fail(
            "unknown escape '\\\(Character(Unicode.Scalar(escape)))': JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX", at: index - 2
          )
        }
      case 0x00..<0x20:
        if byte == 0x0A { throw fail("the string opened at \(start) is not closed on its line") }
        throw fail("control character 0x\(String(byte, radix: 16, uppercase: true)) in a string must be escaped")
      default:
        output.append(byte)
        index += 1
      }
    }
  }
}
