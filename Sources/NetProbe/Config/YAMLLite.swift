/// YAML-lite: the strict subset of YAML that configuration files are written in.
///
/// Every document it accepts is valid YAML 1.1 and reads as the same tree in PyYAML's
/// `safe_load` (the conformance test checks this on every fixture); everything else is
/// rejected with the line and column of the offending character and what was expected.
/// The subset is small on purpose: an operator can predict what a file means, and the reader
/// stays a few hundred lines of linear-time code that the fuzzer can cover.
///
/// Accepted:
/// - block mappings (`key: value`) and block lists (`- item`), nested by indentation with
///   spaces; a list may sit at the same indentation as its key (`key:` then `- a`); a list
///   item may hold a compact mapping (`- name: a` with further keys aligned under `name`)
///   or a compact list (`- - a`);
/// - flow lists `[a, b]` and flow mappings `{k: v}` of scalars only, on a single line;
///   a trailing comma is allowed;
/// - plain scalars on a single line; 'single-quoted' (`''` is a quote) and "double-quoted"
///   scalars with YAML's escapes, also on a single line;
/// - comments (`#` at the start of a line or after a space), blank lines, a leading byte
///   order mark, one `---` line before the content and `...` after it.
///
/// Rejected: tabs outside quoted strings and comments, anchors, aliases, tags, block
/// scalars, multi-line plain or quoted scalars, directives, several documents, `?` keys,
/// non-string or duplicate keys, keys over 1024 characters, nested flow collections,
/// control characters, and plain scalars PyYAML resolves but cannot construct.
public enum YAMLLite {
  /// Deep enough for any configuration, shallow enough that recursion cannot exhaust a
  /// thread's stack (and that PyYAML's recursive composer agrees on the tree).
  static let maximumDepth = 100
  /// PyYAML forgets a possible simple key after 1024 characters.
  static let maximumKeyLength = 1024

  /// Reads `text` as one YAML-lite document. An empty document is a null scalar at 1:1.
  public static func parse(_ text: String) throws(ConfigDiagnostic) -> YAMLNode {
    switch parseReportingAll(text) {
    case .success(let root): return root
    case .failure(let errors): throw errors.diagnostics[0]
    }
  }

  /// Syntax errors collected before the reader gives up: far more than anyone reads
  /// (`ConfigErrors.printedLimit` are printed), few enough to cost no memory to speak of.
  static let maximumErrors = 1000

  /// Reads `text` as one YAML-lite document, or returns every syntax error, in file order:
  /// after an error in an entry of a block collection the reader resumes at the next entry.
  public static func parseReportingAll(_ text: String) -> Result<YAMLNode, ConfigErrors> {
    var text = text
    text.makeContiguousUTF8()
    // The reader works on the string's own UTF-8 storage: no copy of the file is made.
    let result = text.utf8.withContiguousStorageIfAvailable { bytes in
      var reader = YAMLLiteReader(bytes)
      return reader.documentReportingAll()
    }
    guard let result else { preconditionFailure("a contiguous UTF-8 string has contiguous storage") }
    return result
  }
}

/// A line that holds content: not blank, not only a comment.
private struct ContentLine {
  /// Index into the reader's line table.
  var line: Int
  /// 0-based column of the first character, i.e. the number of leading spaces.
  var indent: Int
  /// Index of the first character in the reader's scalar array.
  var start: Int
}

/// What a scalar in block context turned out to be: a value, or a key followed by `:`.
private struct BlockScalar {
  var scalar: YAMLScalar
  /// Index of the `:` when the scalar is a mapping key.
  var colon: Int?
  /// Index just past the scalar's last character (past the closing quote).
  var end: Int
  /// A plain scalar that ran to the end of its line: the next line could have been a
  /// continuation in full YAML, which matters for the error message only.
  var reachedLineEnd: Bool
}

/// The recursive-descent reader over an array of Unicode scalars, one line at a time.
///
/// Block structure is decided by a line's indentation, so the reader peeks at the next
/// content line and lets each open collection decide whether that line belongs to it.
/// Every loop consumes a character or a line, and every line is checked once: O(n).
private struct YAMLLiteReader {
  typealias Failure = ConfigDiagnostic

  /// The text's scalars, by one index across the whole document.
  let chars: ScalarLines
  /// Each line's characters, without its line break.
  let lines: [Range<Int>]
  /// The line being read; every location is computed against it.
  var line = 0
  /// The first line not consumed yet.
  var next = 0
  /// Lines before this one have had their characters checked.
  var checkedLines = 0
  var peeked: ContentLine?
  var sawDocumentStart = false
  var sawContent = false
  var ended = false
  /// The last consumed line ended with a plain scalar and no comment.
  var openPlain = false
  /// Block collections open around the current position.
  var depth = 0
  /// Syntax errors recovered from, in the order found.
  var errors: [ConfigDiagnostic] = []
  /// The last line an error was recovered from: recovery always moves past it.
  var recoveredThrough = -1
  /// Set by an error about the document as a whole (a second document, a directive):
  /// what follows is not part of this document's structure, so nothing is recovered.
  var endOfRecovery = false

  init(_ bytes: UnsafeBufferPointer<UInt8>) {
    var lines: [Range<Int>] = []
    var byteStarts: [Int] = []
    // PyYAML skips a byte order mark at the start of the stream; so do editors' columns.
    var offset = bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0
    var scalar = 0
    var start = 0
    var startByte = offset
    while offset < bytes.count {
      let byte = bytes[offset]
      switch byte {
      case 0x0A:
        lines.append(start..<scalar)
        byteStarts.append(startByte)
        offset += 1
        scalar += 1
        start = scalar
        startByte = offset
      case 0x0D:
        lines.append(start..<scalar)
        byteStarts.append(startByte)
        let pair = offset + 1 < bytes.count && bytes[offset + 1] == 0x0A
        offset += pair ? 2 : 1
        scalar += pair ? 2 : 1
        start = scalar
        startByte = offset
      default:
        // Continuation bytes (10xxxxxx) belong to the scalar their lead byte started.
        if byte & 0xC0 != 0x80 { scalar += 1 }
        offset += 1
      }
    }
    if start < scalar {
      lines.append(start..<scalar)
      byteStarts.append(startByte)
    }
    self.chars = ScalarLines(bytes: bytes, lines: lines, byteStarts: byteStarts)
    self.lines = lines
  }

  // MARK: Document

  /// The document, or every syntax error found in it (in file order).
  mutating func documentReportingAll() -> Result<YAMLNode, ConfigErrors> {
    do throws(Failure) {
      let root = try document()
      return errors.isEmpty ? .success(root) : .failure(ConfigErrors(errors.sorted { $0.location < $1.location }))
    } catch {
      var all = errors
      if errors.count >= YAMLLite.maximumErrors {
        all.append(ConfigDiagnostic(error.location, "stopped after \(YAMLLite.maximumErrors) syntax errors"))
      } else {
        all.append(error)
      }
      return .failure(ConfigErrors(all.sorted { $0.location < $1.location }))
    }
  }

  mutating func document() throws(Failure) -> YAMLNode {
    guard let first = try peekLine() else {
      return Self.null(at: SourceLocation(line: 1, column: 1))
    }
    let root = try node(at: first.start, inline: false)
    guard let extra = try peekLine() else { return root }
    if let scalar = root.scalar, scalar.style == .plain {
      if openPlain && !looksStructural(extra) {
        throw fail(extra.start, "multi-line plain scalars are not supported; quote the value")
      }
      if looksStructural(extra) {
        // `name value` on the first line, keys below it: the first line lacks its colon.
        let end = SourceLocation(
          line: scalar.location.line, column: scalar.location.column + scalar.text.unicodeScalars.count)
        throw ConfigDiagnostic(end, "expected ':' after mapping key")
      }
    }
    if root.scalar != nil || chars[first.start] == "[" || chars[first.start] == "{" {
      throw fail(extra.start, "expected end of document after the top-level value")
    }
    throw fail(extra.start, "bad indentation: expected column \(first.indent + 1), found column \(extra.indent + 1)")
  }

  // MARK: Recovery

  /// Goes on after a syntax error inside a block collection whose entries sit at `column`:
  /// records the error, then skips the line it is on and every line below indented deeper
  /// than `column` (the rest of the broken entry), so the collection resumes at its next
  /// entry and a file with three typos in three places shows three errors. Rethrows when
  /// the limit of errors is reached or no line would be skipped.
  mutating func recover(from error: Failure, inside column: Int) throws(Failure) {
    let failing = max(line, error.location.line - 1)
    guard !endOfRecovery, errors.count < YAMLLite.maximumErrors, failing > recoveredThrough, failing < lines.count else {
      throw error
    }
    errors.append(error)
    recoveredThrough = failing
    next = failing + 1
    peeked = nil
    openPlain = false
    while true {
      do throws(Failure) {
        guard let below = try peekLine(), below.indent > column else { return }
        next = below.line + 1
        peeked = nil
      } catch {
        if endOfRecovery { throw error }
        // A line that is itself malformed inside the skipped entry: skipped with it.
        next = line + 1
        peeked = nil
      }
    }
  }

  // MARK: Lines

  /// The next line with content, skipping blank and comment lines and handling document
  /// markers; nil at the end of the document. Does not consume the line.
  mutating func peekLine() throws(Failure) -> ContentLine? {
    if let peeked { return peeked }
    while next < lines.count, !ended {
      line = next
      try checkCharacters()
      let range = lines[next]
      var index = range.lowerBound
      while index < range.upperBound && chars[index] == " " { index += 1 }
      if index < range.upperBound && chars[index] == "\t" {
        throw fail(index, "tabs are not allowed in indentation; use spaces")
      }
      if index == range.upperBound || chars[index] == "#" {
        next += 1
        continue
      }
      if index == range.lowerBound {
        if isMarker("-", at: index) {
          guard !sawContent && !sawDocumentStart else {
            endOfRecovery = true
            throw fail(index, "multiple documents are not supported")
          }
          sawDocumentStart = true
          var after = index + 3
          try skipSpaces(&after)
          if after < range.upperBound && chars[after] != "#" {
            endOfRecovery = true
            throw fail(after, "content after '---' is not supported; start the document on the next line")
          }
          next += 1
          continue
        }
        if isMarker(".", at: index) {
          guard sawContent || sawDocumentStart else {
            endOfRecovery = true
            throw fail(index, "document end marker '...' before any content")
          }
          try checkAfterDocumentEnd()
          return nil
        }
        if chars[index] == "%" {
          endOfRecovery = true
          throw fail(index, "directives (%YAML, %TAG) are not supported")
        }
      }
      sawContent = true
      let content = ContentLine(line: next, indent: index - range.lowerBound, start: index)
      peeked = content
      return content
    }
    return nil
  }

  /// Marks the current line as read.
  mutating func consumeLine(openPlain: Bool = false) {
    next = line + 1
    peeked = nil
    self.openPlain = openPlain
  }

  /// After `...` only comments, blank lines and more `...` may follow: anything else is a
  /// second document, which PyYAML's `safe_load` refuses.
  mutating func checkAfterDocumentEnd() throws(Failure) {
    ended = true
    while next < lines.count {
      line = next
      try checkCharacters()
      let range = lines[next]
      var index = range.lowerBound
      while index < range.upperBound && chars[index] == " " { index += 1 }
      if index < range.upperBound && chars[index] == "\t" {
        throw fail(index, "tabs are not allowed in indentation; use spaces")
      }
      if index == range.lowerBound && isMarker(".", at: index) {
        index += 3
        try skipSpaces(&index)
      }
      if index < range.upperBound && chars[index] != "#" {
        endOfRecovery = true
        throw fail(index, "multiple documents are not supported")
      }
      next += 1
    }
  }

  /// `---` or `...` at the start of a line, followed by a blank or the line's end.
  func isMarker(_ character: Unicode.Scalar, at index: Int) -> Bool {
    let end = lines[line].upperBound
    guard index + 3 <= end else { return false }
    for offset in 0..<3 where chars[index + offset] != character { return false }
    return isBlankOrEnd(index + 3)
  }

  /// PyYAML's reader refuses non-printable characters anywhere, even inside quotes and
  /// comments; NEL and the Unicode separators are line breaks to it but not to editors.
  mutating func checkCharacters() throws(Failure) {
    guard line >= checkedLines else { return }
    checkedLines = line + 1
    for index in lines[line] {
      let value = chars[index].value
      switch value {
      case 0x85, 0x2028, 0x2029:
        throw fail(index, "unicode line break \(Self.codePoint(value)) is not allowed; use an escape in a double-quoted string")
      case 0x09, 0x20...0x7E, 0xA0...0xFFFD:
        continue
      case 0xFFFE, 0xFFFF:
        throw fail(index, "non-character \(Self.codePoint(value)) is not allowed")
      case 0x10000...:
        continue
      default:
        throw fail(index, "control character \(Self.codePoint(value)) is not allowed; use an escape in a double-quoted string")
      }
    }
  }

  // MARK: Block context

  /// The node that starts at `index` on the current line. `inline` is true right after
  /// `key:` on the same line, where only a scalar or a flow collection may follow.
  mutating func node(at index: Int, inline: Bool) throws(Failure) -> YAMLNode {
    let character = chars[index]
    if character == "-" && isBlankOrEnd(index + 1) {
      if inline {
        throw fail(index, "a list cannot start on the same line as its key; start it on the next line")
      }
      return try blockSequence(column: index - lines[line].lowerBound, indentless: false)
    }
    if character == "[" || character == "{" {
      try checkDepth(at: index)
      let (collection, after) = try flowCollection(at: index)
      var rest = after
      try skipSpaces(&rest)
      if !inline && rest < lineEnd && chars[rest] == ":" && isBlankOrEnd(rest + 1) {
        throw fail(index, "mapping keys must be scalars, not flow collections")
      }
      try expectLineEnd(from: after, "unexpected text after '\(character == "[" ? "]" : "}")'")
      consumeLine()
      return collection
    }
    let found = try blockScalar(at: index, inline: inline)
    if let colon = found.colon {
      if inline {
        let message =
          found.scalar.style == .plain
          ? "unexpected ':' in a value; quote the value if it contains ': '"
          : "unexpected text after closing quote"
        throw fail(colon, message)
      }
      return try blockMapping(column: index - lines[line].lowerBound, firstKey: found.scalar, colon: colon)
    }
    try checkPlainValue(found.scalar, at: index)
    consumeLine(openPlain: found.reachedLineEnd)
    return YAMLNode(.scalar(found.scalar), at: found.scalar.location)
  }

  /// A block mapping whose keys sit at `column`; the first key has been read.
  mutating func blockMapping(column: Int, firstKey: YAMLScalar, colon firstColon: Int) throws(Failure) -> YAMLNode {
    try checkDepth(at: lines[line].lowerBound + column)
    depth += 1
    defer { depth -= 1 }
    var entries: [YAMLMappingEntry] = []
    var firstSeen: [String: SourceLocation] = [:]
    var pending: (key: YAMLScalar, colon: Int)? = (firstKey, firstColon)
    var childColumn: Int?
    scan: while true {
      do throws(Failure) {
        if let (key, colon) = pending {
          pending = nil
          childColumn = nil
          try checkKey(key, colon: colon, firstSeen: &firstSeen)
          var index = colon + 1
          try skipSpaces(&index)
          let value: YAMLNode
          if index == lineEnd || chars[index] == "#" {
            let nullLocation = location(colon + 1)
            consumeLine()
            let below = try peekLine()
            if let below, below.indent > column {
              value = try node(at: below.start, inline: false)
              if isBlockCollection(value, startingAt: below.start) { childColumn = below.indent }
            } else if let below, below.indent == column, isSequenceEntry(below.start) {
              value = try blockSequence(column: column, indentless: true)
            } else {
              value = Self.null(at: nullLocation)
            }
          } else {
            value = try node(at: index, inline: true)
          }
          entries.append(YAMLMappingEntry(key: key, value: value))
        }
        guard let below = try peekLine(), below.indent >= column else { break scan }
        if below.indent > column { throw misplaced(below, expected: childColumn ?? column) }
        if isSequenceEntry(below.start) {
          throw fail(below.start, "expected a mapping key, found a list item")
        }
        if chars[below.start] == "[" || chars[below.start] == "{" {
          throw fail(below.start, "mapping keys must be scalars, not flow collections")
        }
        let found = try blockScalar(at: below.start, inline: false)
        guard let nextColon = found.colon else { throw fail(found.end, "expected ':' after mapping key") }
        pending = (found.scalar, nextColon)
      } catch {
        try recover(from: error, inside: column)
      }
    }
    return YAMLNode(.mapping(entries), at: firstKey.location)
  }

  /// A block list whose `-` indicators sit at `column` on the current line and the lines
  /// below. An `indentless` list is a mapping value at its key's column: it ends at the
  /// first line at that column that is not a list item.
  mutating func blockSequence(column: Int, indentless: Bool) throws(Failure) -> YAMLNode {
    try checkDepth(at: lines[line].lowerBound + column)
    depth += 1
    defer { depth -= 1 }
    let start = location(lines[line].lowerBound + column)
    var items: [YAMLNode] = []
    var atItem = true
    var childColumn: Int?
    scan: while true {
      do throws(Failure) {
        if atItem {
          atItem = false
          childColumn = nil
          let dash = lines[line].lowerBound + column
          var index = dash + 1
          try skipSpaces(&index)
          if index == lineEnd || chars[index] == "#" {
            let nullLocation = location(dash + 1)
            consumeLine()
            if let below = try peekLine(), below.indent > column {
              let item = try node(at: below.start, inline: false)
              if isBlockCollection(item, startingAt: below.start) { childColumn = below.indent }
              items.append(item)
            } else {
              items.append(Self.null(at: nullLocation))
            }
          } else {
            let itemColumn = index - lines[line].lowerBound
            let item = try node(at: index, inline: false)
            if isBlockCollection(item, startingAt: index) { childColumn = itemColumn }
            items.append(item)
          }
        }
        guard let below = try peekLine(), below.indent >= column else { break scan }
        if below.indent > column { throw misplaced(below, expected: childColumn ?? column) }
        if !isSequenceEntry(below.start) {
          if indentless { break scan }
          throw fail(below.start, "expected '- ' to start a list item")
        }
        atItem = true
      } catch {
        try recover(from: error, inside: column)
      }
    }
    return YAMLNode(.sequence(items), at: start)
  }

  /// A scalar in block context, and whether a `:` follows that makes it a mapping key.
  func blockScalar(at index: Int, inline: Bool) throws(Failure) -> BlockScalar {
    let character = chars[index]
    if character == "\"" || character == "'" {
      let (scalar, after) = try quoted(at: index)
      var rest = after
      try skipSpaces(&rest)
      if rest < lineEnd && chars[rest] == ":" && isBlankOrEnd(rest + 1) {
        return BlockScalar(scalar: scalar, colon: rest, end: after, reachedLineEnd: false)
      }
      try expectLineEnd(from: after, "unexpected text after closing quote")
      return BlockScalar(scalar: scalar, colon: nil, end: after, reachedLineEnd: false)
    }
    try checkPlainStart(at: index, flow: false, inline: inline)
    // A plain scalar runs to `: `, ` #` or the line's end; inner spaces are kept.
    let end = lineEnd
    var cursor = index
    while true {
      while cursor < end {
        let c = chars[cursor]
        if c == " " || c == "\t" || (c == ":" && isBlankOrEnd(cursor + 1)) { break }
        cursor += 1
      }
      let textEnd = cursor
      var after = cursor
      while after < end && chars[after] == " " { after += 1 }
      if after == end {
        return BlockScalar(scalar: plain(index..<textEnd), colon: nil, end: textEnd, reachedLineEnd: true)
      }
      if chars[after] == "\t" { throw tabOutsideQuotes(after) }
      if chars[after] == "#" && after > textEnd {
        return BlockScalar(scalar: plain(index..<textEnd), colon: nil, end: textEnd, reachedLineEnd: false)
      }
      if chars[after] == ":" && isBlankOrEnd(after + 1) {
        return BlockScalar(scalar: plain(index..<textEnd), colon: after, end: textEnd, reachedLineEnd: false)
      }
      cursor = after
    }
  }

  /// An error for a line indented deeper than anything open allows (the peeked line is
  /// the current one).
  func misplaced(_ content: ContentLine, expected: Int) -> ConfigDiagnostic {
    if openPlain && !looksStructural(content) {
      return fail(content.start, "multi-line plain scalars are not supported; quote the value")
    }
    return fail(content.start, "bad indentation: expected column \(expected + 1), found column \(content.indent + 1)")
  }

  /// Whether a line reads as a key or a list item rather than a continuation of text: a
  /// guess that only chooses between two error messages.
  func looksStructural(_ content: ContentLine) -> Bool {
    let end = lines[content.line].upperBound
    if chars[content.start] == "-" && (content.start + 1 == end || chars[content.start + 1] == " ") {
      return true
    }
    for index in content.start..<end where chars[index] == ":" {
      if index + 1 == end || chars[index + 1] == " " { return true }
    }
    return false
  }

  /// Refuses a collection nested inside `maximumDepth` others (a flow collection counts,
  /// though it nests nothing itself).
  func checkDepth(at index: Int) throws(Failure) {
    if depth >= YAMLLite.maximumDepth {
      throw fail(index, "nesting deeper than \(YAMLLite.maximumDepth) levels is not supported")
    }
  }

  func isSequenceEntry(_ index: Int) -> Bool {
    chars[index] == "-" && isBlankOrEnd(index + 1)
  }

  func isBlockCollection(_ node: YAMLNode, startingAt index: Int) -> Bool {
    guard node.scalar == nil else { return false }
    return chars[index] != "[" && chars[index] != "{"
  }

  // MARK: Flow context

  /// `[a, b]` or `{k: v}` of scalars, closed on the same line. Returns the index after the
  /// closing bracket.
  func flowCollection(at open: Int) throws(Failure) -> (YAMLNode, Int) {
    let isSequence = chars[open] == "["
    let closer: Unicode.Scalar = isSequence ? "]" : "}"
    let kind = isSequence ? "flow sequence" : "flow mapping"
    var items: [YAMLNode] = []
    var entries: [YAMLMappingEntry] = []
    var firstSeen: [String: SourceLocation] = [:]
    var index = open + 1
    try skipSpaces(&index)
    if index < lineEnd && chars[index] == closer {
      return (YAMLNode(isSequence ? .sequence([]) : .mapping([]), at: location(open)), index + 1)
    }
    while true {
      if isSequence {
        let (scalar, after) = try flowScalar(at: index, open: open, role: "a value")
        try checkPlainValue(scalar, at: index)
        items.append(YAMLNode(.scalar(scalar), at: scalar.location))
        index = after
      } else {
        let (key, afterKey) = try flowScalar(at: index, open: open, role: "a mapping key")
        var colon = afterKey
        try skipSpaces(&colon)
        guard colon < lineEnd, chars[colon] == ":" else {
          let hint = key.style == .plain && key.text.contains(":") ? " (put a space after ':')" : ""
          throw fail(colon, "expected ':' after mapping key\(hint)")
        }
        try checkKey(key, colon: colon, firstSeen: &firstSeen)
        index = colon + 1
        try skipSpaces(&index)
        if index < lineEnd && (chars[index] == "," || chars[index] == closer) {
          entries.append(YAMLMappingEntry(key: key, value: Self.null(at: location(colon + 1))))
        } else {
          let (scalar, after) = try flowScalar(at: index, open: open, role: "a value")
          try checkPlainValue(scalar, at: index)
          entries.append(YAMLMappingEntry(key: key, value: YAMLNode(.scalar(scalar), at: scalar.location)))
          index = after
        }
      }
      let afterEntry = index
      try skipSpaces(&index)
      if index == lineEnd || (chars[index] == "#" && index > afterEntry) { throw unclosed(open) }
      if chars[index] == "," {
        index += 1
        try skipSpaces(&index)
        if index < lineEnd && chars[index] == closer { break }
        continue
      }
      if chars[index] == closer { break }
      throw fail(index, "expected ',' or '\(closer)' in \(kind), found '\(chars[index])'")
    }
    let node = YAMLNode(isSequence ? .sequence(items) : .mapping(entries), at: location(open))
    return (node, index + 1)
  }

  /// One scalar inside a flow collection; returns the index after it.
  func flowScalar(at index: Int, open: Int, role: String) throws(Failure) -> (YAMLScalar, Int) {
    let end = lineEnd
    if index == end || (chars[index] == "#" && chars[index - 1] == " ") { throw unclosed(open) }
    let character = chars[index]
    switch character {
    case "\"", "'":
      return try quoted(at: index)
    case "[", "{":
      throw fail(index, "nested flow collections are not supported")
    case ",":
      throw fail(index, "expected \(role) before ','")
    case "]", "}":
      throw fail(index, "unexpected '\(character)'")
    case ":":
      throw fail(index, "plain values in flow collections cannot start with ':'; quote the value")
    case "-" where isBlankOrEnd(index + 1):
      throw fail(index, "list items ('- ') are not allowed inside a flow collection")
    default:
      try checkPlainStart(at: index, flow: true, inline: true)
    }
    // A plain scalar in flow context also ends at `,`, `?`, brackets and braces, and at a
    // `:` followed by one of them.
    var cursor = index
    while true {
      while cursor < end {
        let c = chars[cursor]
        if c == " " || c == "\t" || isFlowTerminator(cursor) { break }
        cursor += 1
      }
      let textEnd = cursor
      var after = cursor
      while after < end && chars[after] == " " { after += 1 }
      if after == end || (chars[after] == "#" && after > textEnd) || isFlowTerminator(after) {
        return (plain(index..<textEnd), textEnd)
      }
      if chars[after] == "\t" { throw tabOutsideQuotes(after) }
      cursor = after
    }
  }

  func isFlowTerminator(_ index: Int) -> Bool {
    switch chars[index] {
    case ",", "?", "[", "]", "{", "}":
      return true
    case ":":
      guard index + 1 < lineEnd else { return true }
      return [" ", "\t", ",", "[", "]", "{", "}"].contains(chars[index + 1])
    default:
      return false
    }
  }

  func unclosed(_ open: Int) -> ConfigDiagnostic {
    fail(open, "unclosed '\(chars[open])': flow collections must end on the line they start")
  }

  // MARK: Scalars

  /// Refuses the characters YAML gives a meaning at the start of a plain scalar.
  func checkPlainStart(at index: Int, flow: Bool, inline: Bool) throws(Failure) {
    let character = chars[index]
    let followedByBlank = isBlankOrEnd(index + 1)
    switch character {
    case "&", "*":
      throw fail(index, "anchors and aliases are not supported")
    case "!":
      throw fail(index, "tags are not supported")
    case "|" where !flow, ">" where !flow:
      throw fail(index, "block scalars (| and >) are not supported; use a quoted string")
    case "?" where followedByBlank || flow:
      throw fail(index, "complex mapping keys ('? ') are not supported")
    case ":" where followedByBlank:
      throw fail(index, inline ? "unexpected ':' in a value; quote the value if it contains ': '" : "expected a mapping key before ':'")
    case ",", "|", ">", "%", "@", "`", "#":
      throw fail(index, "plain values cannot start with '\(character)'; quote the value")
    case "]", "}":
      throw fail(index, "unexpected '\(character)'")
    default:
      return
    }
  }

  /// A single- or double-quoted scalar closed on the same line; returns the index after
  /// the closing quote.
  func quoted(at open: Int) throws(Failure) -> (YAMLScalar, Int) {
    let end = lineEnd
    var text = String.UnicodeScalarView()
    var index = open + 1
    if chars[open] == "'" {
      while true {
        guard index < end else { throw fail(open, "unterminated single-quoted string") }
        if chars[index] == "'" {
          guard index + 1 < end && chars[index + 1] == "'" else { break }
          text.append("'")
          index += 2
          continue
        }
        text.append(chars[index])
        index += 1
      }
      return (YAMLScalar(String(text), style: .singleQuoted, at: location(open)), index + 1)
    }
    while true {
      // A backslash at the end of a line would continue the string on the next one.
      guard index < end, !(chars[index] == "\\" && index + 1 == end) else {
        throw fail(open, "unterminated double-quoted string")
      }
      let character = chars[index]
      if character == "\"" { break }
      guard character == "\\" else {
        text.append(character)
        index += 1
        continue
      }
      let escape = chars[index + 1]
      if let replacement = Self.escapes[escape] {
        text.append(replacement)
        index += 2
        continue
      }
      let width = escape == "x" ? 2 : escape == "u" ? 4 : escape == "U" ? 8 : 0
      guard width > 0 else { throw fail(index, "unknown escape sequence '\\\(escape)'") }
      var value: UInt32 = 0
      for offset in 0..<width {
        let digitIndex = index + 2 + offset
        guard digitIndex < end, let digit = Character(chars[digitIndex]).hexDigitValue, chars[digitIndex].isASCII else {
          throw fail(index, "expected \(width) hexadecimal digits after '\\\(escape)'")
        }
        value = value << 4 | UInt32(digit)
      }
      guard let scalar = Unicode.Scalar(value) else {
        throw fail(
          index, "invalid unicode escape '\\\(escape)\(String(String.UnicodeScalarView(chars[(index + 2)..<(index + 2 + width)])))'")
      }
      text.append(scalar)
      index += 2 + width
    }
    return (YAMLScalar(String(text), style: .doubleQuoted, at: location(open)), index + 1)
  }

  /// The single-character escapes of YAML 1.1 double-quoted scalars, as PyYAML reads them.
  static let escapes: [Unicode.Scalar: Unicode.Scalar] = [
    "0": "\u{0}", "a": "\u{7}", "b": "\u{8}", "t": "\u{9}", "\t": "\u{9}", "n": "\u{A}",
    "v": "\u{B}", "f": "\u{C}", "r": "\u{D}", "e": "\u{1B}", " ": " ", "\"": "\"",
    "\\": "\\", "/": "/", "N": "\u{85}", "_": "\u{A0}", "L": "\u{2028}", "P": "\u{2029}",
  ]

  func plain(_ range: Range<Int>) -> YAMLScalar {
    YAMLScalar(String(String.UnicodeScalarView(chars[range])), style: .plain, at: location(range.lowerBound))
  }

  /// Plain values PyYAML resolves to a type it then cannot construct.
  func checkPlainValue(_ scalar: YAMLScalar, at index: Int) throws(Failure) {
    guard scalar.style == .plain, let problem = PlainScalarResolver.resolve(scalar.text).problem else { return }
    throw fail(index, problem)
  }

  /// Keys are strings (YAML would make `1:` an integer and `yes:` a boolean), unique, not
  /// the merge key, and short enough for PyYAML to find their `:`.
  func checkKey(_ key: YAMLScalar, colon: Int, firstSeen: inout [String: SourceLocation]) throws(Failure) {
    if key.style == .plain && key.text != "=" {
      if key.text == "<<" { throw ConfigDiagnostic(key.location, "merge keys ('<<') are not supported") }
      let resolution = PlainScalarResolver.resolve(key.text)
      if let problem = resolution.problem { throw ConfigDiagnostic(key.location, problem) }
      guard case .string = resolution.value else {
        throw ConfigDiagnostic(key.location, "mapping keys must be strings; quote '\(Self.shown(key.text))'")
      }
    }
    if colon - lines[line].lowerBound - (key.location.column - 1) > YAMLLite.maximumKeyLength {
      throw ConfigDiagnostic(key.location, "mapping keys must be at most \(YAMLLite.maximumKeyLength) characters long")
    }
    if let first = firstSeen[key.text] {
      throw ConfigDiagnostic(key.location, "duplicate key '\(Self.shown(key.text))' (first at \(first))")
    }
    firstSeen[key.text] = key.location
  }

  // MARK: Small helpers

  var lineEnd: Int { lines[line].upperBound }

  func location(_ index: Int) -> SourceLocation {
    SourceLocation(line: line + 1, column: index - lines[line].lowerBound + 1)
  }

  func fail(_ index: Int, _ message: String) -> ConfigDiagnostic {
    ConfigDiagnostic(location(index), message)
  }

  func tabOutsideQuotes(_ index: Int) -> ConfigDiagnostic {
    fail(index, "tabs are not allowed outside quoted strings and comments; use spaces")
  }

  func isBlankOrEnd(_ index: Int) -> Bool {
    index >= lineEnd || chars[index] == " " || chars[index] == "\t"
  }

  /// Skips spaces; a tab is an error, since PyYAML cannot start a token with one.
  func skipSpaces(_ index: inout Int) throws(Failure) {
    while index < lineEnd && chars[index] == " " { index += 1 }
    if index < lineEnd && chars[index] == "\t" { throw tabOutsideQuotes(index) }
  }

  /// After a finished node only spaces and a comment (after a space) may end the line.
  func expectLineEnd(from index: Int, _ message: String) throws(Failure) {
    var rest = index
    try skipSpaces(&rest)
    if rest == lineEnd || (chars[rest] == "#" && rest > index) { return }
    throw fail(rest, message)
  }

  static func null(at location: SourceLocation) -> YAMLNode {
    YAMLNode(.scalar(YAMLScalar("", style: .plain, at: location)), at: location)
  }

  static func codePoint(_ value: UInt32) -> String {
    let hex = String(value, radix: 16, uppercase: true)
    return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
  }

  /// A user's text for an error message: short, on one line.
  static func shown(_ text: String) -> String { ConfigValues.shown(text) }

}

/// The document's Unicode scalars, addressed by one index across the whole text, but kept
/// as the UTF-8 the file was written in: a line is decoded into scalars when the reader
/// first looks at it, and only the last two lines stay decoded (the reader works on the
/// line it reads and the one it peeked at). An array of every scalar would cost four bytes
/// a character, 64 MiB for a 16 MiB file, more than the parsed tree.
final class ScalarLines {
  private let bytes: UnsafeBufferPointer<UInt8>
  /// Each line's scalar indices, without its line break.
  private let lines: [Range<Int>]
  /// The UTF-8 offset where each line starts.
  private let byteStarts: [Int]
  /// The two most recently decoded lines, the most recent in slot 0.
  private var range0 = 0..<0
  private var scalars0: [Unicode.Scalar] = []
  private var range1 = 0..<0
  private var scalars1: [Unicode.Scalar] = []

  init(bytes: UnsafeBufferPointer<UInt8>, lines: [Range<Int>], byteStarts: [Int]) {
    self.bytes = bytes
    self.lines = lines
    self.byteStarts = byteStarts
  }

  subscript(index: Int) -> Unicode.Scalar {
    if range0.contains(index) { return scalars0[index - range0.lowerBound] }
    if range1.contains(index) { return scalars1[index - range1.lowerBound] }
    return decodeLine(containing: index)
  }

  subscript(range: Range<Int>) -> [Unicode.Scalar] {
    range.map { self[$0] }
  }

  /// Decodes the line that holds `index` into the cache and returns the scalar there; an
  /// index between lines is the line break after the line before it.
  private func decodeLine(containing index: Int) -> Unicode.Scalar {
    var low = 0
    var high = lines.count
    while low < high {
      let middle = (low + high) / 2
      if lines[middle].lowerBound <= index { low = middle + 1 } else { high = middle }
    }
    let line = low - 1
    guard line >= 0, lines[line].contains(index) else { return "\n" }
    let range = lines[line]
    var scalars: [Unicode.Scalar] = []
    scalars.reserveCapacity(range.count)
    var offset = byteStarts[line]
    while scalars.count < range.count {
      // The bytes are a Swift string's, hence valid UTF-8.
      let lead = UInt32(bytes[offset])
      var value: UInt32
      var length: Int
      switch lead {
      case ..<0x80: (value, length) = (lead, 1)
      case ..<0xE0: (value, length) = (lead & 0x1F, 2)
      case ..<0xF0: (value, length) = (lead & 0x0F, 3)
      default: (value, length) = (lead & 0x07, 4)
      }
      for continuation in 1..<length { value = value << 6 | UInt32(bytes[offset + continuation] & 0x3F) }
      scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
      offset += length
    }
    (range1, scalars1) = (range0, scalars0)
    (range0, scalars0) = (range, scalars)
    return scalars[index - range.lowerBound]
  }
}
