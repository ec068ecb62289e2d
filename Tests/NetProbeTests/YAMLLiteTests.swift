import Foundation
import Testing

@testable import NetProbe

/// The YAML-lite reader: every construct it accepts (with the tree PyYAML builds from the
/// same text, as canonical JSON) and every construct it refuses (with the exact place and
/// message an operator will see).
@Suite struct YAMLLiteTests {
  struct Accepted: Sendable, CustomTestStringConvertible {
    let yaml: String
    let json: String
    init(_ yaml: String, _ json: String) {
      self.yaml = yaml
      self.json = json
    }
    var testDescription: String { yaml.debugDescription }
  }

  struct Rejected: Sendable, CustomTestStringConvertible {
    let yaml: String
    let diagnostic: ConfigDiagnostic
    init(_ yaml: String, _ line: Int, _ column: Int, _ message: String) {
      self.yaml = yaml
      diagnostic = ConfigDiagnostic(NetProbe.SourceLocation(line: line, column: column), message)
    }
    var testDescription: String { yaml.debugDescription }
  }

  /// The JSON of every case was checked against PyYAML 6 when the table was written; the
  /// conformance test keeps checking the fixtures the same way.
  static let accepted: [Accepted] = [
    Accepted("a: 1\nb: two\n", "{\"a\":1,\"b\":\"two\"}"),
    Accepted("a:\n  b:\n    c: deep\n", "{\"a\":{\"b\":{\"c\":\"deep\"}}}"),
    Accepted("a:\n- x\n- y\n", "{\"a\":[\"x\",\"y\"]}"),
    Accepted("a:\n  - x\n  - y\n", "{\"a\":[\"x\",\"y\"]}"),
    Accepted("- a\n- b\n", "[\"a\",\"b\"]"),
    Accepted("- a: 1\n  b: 2\n- c: 3\n", "[{\"a\":1,\"b\":2},{\"c\":3}]"),
    Accepted("- - a\n  - b\n- c\n", "[[\"a\",\"b\"],\"c\"]"),
    Accepted("-\n  a: 1\n", "[{\"a\":1}]"),
    Accepted("-\n- b\n", "[null,\"b\"]"),
    Accepted("- # comment\n- b\n", "[null,\"b\"]"),
    Accepted("a:\nb: 2\n", "{\"a\":null,\"b\":2}"),
    Accepted("a: # comment\n  b: 1\n", "{\"a\":{\"b\":1}}"),
    Accepted("- a:\n  b: 1\n", "[{\"a\":null,\"b\":1}]"),
    Accepted("- a:\n  - x\n  c: 1\n", "[{\"a\":[\"x\"],\"c\":1}]"),
    Accepted("- a:\n    b: 1\n", "[{\"a\":{\"b\":1}}]"),
    Accepted("a : 1\n", "{\"a\":1}"),
    Accepted("'a' : 1\n", "{\"a\":1}"),
    Accepted("\"a\": 1\n", "{\"a\":1}"),
    Accepted("  a: 1\n  b: 2\n", "{\"a\":1,\"b\":2}"),
    Accepted("a:\n\n  b: 1\n\n  c: 2\n", "{\"a\":{\"b\":1,\"c\":2}}"),
    Accepted("-   a: 1\n    b: 2\n", "[{\"a\":1,\"b\":2}]"),
    Accepted("a:\n   - x\n   - y\nb: 1\n", "{\"a\":[\"x\",\"y\"],\"b\":1}"),
    Accepted("k:\n  - a: 1\n    b:\n    - x\n  - c\n", "{\"k\":[{\"a\":1,\"b\":[\"x\"]},\"c\"]}"),
    Accepted("plain text with  spaces\n", "\"plain text with  spaces\""),
    Accepted("a: x#y\n", "{\"a\":\"x#y\"}"),
    Accepted("a: x # comment\n", "{\"a\":\"x\"}"),
    Accepted("a: b:c\n", "{\"a\":\"b:c\"}"),
    Accepted("a: http://h:80/p?q#f\n", "{\"a\":\"http://h:80/p?q#f\"}"),
    Accepted("a: ::1\n", "{\"a\":\"::1\"}"),
    Accepted("a: -x\n", "{\"a\":\"-x\"}"),
    Accepted("a: ?x\n", "{\"a\":\"?x\"}"),
    Accepted("a: :x\n", "{\"a\":\":x\"}"),
    Accepted("a: ---\n", "{\"a\":\"---\"}"),
    Accepted("a: x,y[z]{w}\n", "{\"a\":\"x,y[z]{w}\"}"),
    Accepted("?x: 1\n", "{\"?x\":1}"),
    Accepted("-x: 1\n", "{\"-x\":1}"),
    Accepted("=: 1\n", "{\"=\":1}"),
    Accepted("a: 'it''s'\n", "{\"a\":\"it's\"}"),
    Accepted("a: ''\n", "{\"a\":\"\"}"),
    Accepted("a: \"\"\n", "{\"a\":\"\"}"),
    Accepted("a: 'a\tb'\n", "{\"a\":\"a\\tb\"}"),
    Accepted(
      "a: \"\\0\\a\\b\\t\\n\\v\\f\\r\\e\\ \\\"\\\\\\/\"\n", "{\"a\":\"\\u0000\\u0007\\u0008\\t\\n\\u000b\\u000c\\r\\u001b \\\"\\\\/\"}"),
    Accepted("a: \"\\N\\_\\L\\P\"\n", "{\"a\":\"\\u0085\u{A0}\\u2028\\u2029\"}"),
    Accepted("a: \"\\x41\\u00e9\\U0001F642\"\n", "{\"a\":\"Aé🙂\"}"),
    Accepted("a: \"\\\tx\"\n", "{\"a\":\"\\tx\"}"),
    Accepted("a: été\nclé: 1\n", "{\"a\":\"été\",\"clé\":1}"),
    Accepted("a: \u{A0}x\n", "{\"a\":\"\u{A0}x\"}"),
    Accepted("a:   b   \n", "{\"a\":\"b\"}"),
    Accepted("[yes, No, TRUE, off, y, n]\n", "[true,false,true,false,\"y\",\"n\"]"),
    Accepted("[~, null, Null, NULL, nULL, '']\n", "[null,null,null,null,\"nULL\",\"\"]"),
    Accepted("[0, -0, 010, 0o10, 0x1F, 0b11, 1_000, 1:30, -1:30, 08]\n", "[0,0,8,\"0o10\",31,3,1000,90,-90,\"08\"]"),
    Accepted(
      "[1.5, 1., .5, -.inf, .NaN, 1e5, 1.0e+5, 190:20:30.15, -0.0]\n",
      "[1.5,1.0,0.5,{\"!!float\":\"-.inf\"},{\"!!float\":\".nan\"},\"1e5\",100000.0,685230.15,-0.0]"),
    Accepted(
      "[2001-12-14, 2001-12-14 21:59:43.10 -5, 2001-12-14t21:59:43Z, 2001-1-1]\n",
      "[{\"!!timestamp\":\"2001-12-14\"},{\"!!timestamp\":\"2001-12-14T21:59:43.100000-05:00\"},{\"!!timestamp\":\"2001-12-14T21:59:43+00:00\"},\"2001-1-1\"]"
    ),
    Accepted(
      "[9223372036854775807, 9223372036854775808, -9223372036854775808, -9223372036854775809]\n",
      "[9223372036854775807,{\"!!int\":\"9223372036854775808\"},-9223372036854775808,{\"!!int\":\"-9223372036854775809\"}]"),
    Accepted("[]\n", "[]"),
    Accepted("{}\n", "{}"),
    Accepted("[ ]\n", "[]"),
    Accepted("{ }\n", "{}"),
    Accepted("[a, b,]\n", "[\"a\",\"b\"]"),
    Accepted("{a: 1, b: 2,}\n", "{\"a\":1,\"b\":2}"),
    Accepted("[a b, 'c', \"d\"]\n", "[\"a b\",\"c\",\"d\"]"),
    Accepted("{a: , b:, c: ~}\n", "{\"a\":null,\"b\":null,\"c\":null}"),
    Accepted("{\"a\":1, 'b':2}\n", "{\"a\":1,\"b\":2}"),
    Accepted("[-, -x, a:b, a#b]\n", "[\"-\",\"-x\",\"a:b\",\"a#b\"]"),
    Accepted("[fe80::1]\n", "[\"fe80::1\"]"),
    Accepted("a: [1, 2] # comment\n", "{\"a\":[1,2]}"),
    Accepted("{'k' : v}\n", "{\"k\":\"v\"}"),
    Accepted("# only a comment\n", "null"),
    Accepted("---\n", "null"),
    Accepted("--- # c\na: 1\n", "{\"a\":1}"),
    Accepted("a: 1\n...\n", "{\"a\":1}"),
    Accepted("a: 1\n... # c\n# c\n...\n", "{\"a\":1}"),
    Accepted("---\n...\n", "null"),
    Accepted("\u{FEFF}a: 1\n", "{\"a\":1}"),
    Accepted("a: 1\r\nb: 2\r\n", "{\"a\":1,\"b\":2}"),
    Accepted("a: 1\rb: 2\r", "{\"a\":1,\"b\":2}"),
    Accepted("# a\tcomment with a tab\na: 1\n", "{\"a\":1}"),
    Accepted("a: 1", "{\"a\":1}"),
    Accepted("a:", "{\"a\":null}"),
    Accepted("-", "[null]"),
  ]

  static let rejected: [Rejected] = [
    Rejected("\ta: 1\n", 1, 1, "tabs are not allowed in indentation; use spaces"),
    Rejected("a:\n\tb: 1\n", 2, 1, "tabs are not allowed in indentation; use spaces"),
    Rejected("a: 1\n  \t\nb: 2\n", 2, 3, "tabs are not allowed in indentation; use spaces"),
    Rejected("a: 1\n\t# c\n", 2, 1, "tabs are not allowed in indentation; use spaces"),
    Rejected("a:\tb\n", 1, 3, "tabs are not allowed outside quoted strings and comments; use spaces"),
    Rejected("a: b\t# c\n", 1, 5, "tabs are not allowed outside quoted strings and comments; use spaces"),
    Rejected("a: 'b'\t\n", 1, 7, "tabs are not allowed outside quoted strings and comments; use spaces"),
    Rejected("[a,\tb]\n", 1, 4, "tabs are not allowed outside quoted strings and comments; use spaces"),
    Rejected("a: b\tc\n", 1, 5, "tabs are not allowed outside quoted strings and comments; use spaces"),
    Rejected("a: &x 1\n", 1, 4, "anchors and aliases are not supported"),
    Rejected("a: *x\n", 1, 4, "anchors and aliases are not supported"),
    Rejected("&x a: 1\n", 1, 1, "anchors and aliases are not supported"),
    Rejected("[&a]\n", 1, 2, "anchors and aliases are not supported"),
    Rejected("a: !!str 1\n", 1, 4, "tags are not supported"),
    Rejected("a: !x\n", 1, 4, "tags are not supported"),
    Rejected("[!x]\n", 1, 2, "tags are not supported"),
    Rejected("a: |\n  x\n", 1, 4, "block scalars (| and >) are not supported; use a quoted string"),
    Rejected("a: >\n  x\n", 1, 4, "block scalars (| and >) are not supported; use a quoted string"),
    Rejected("- |\n", 1, 3, "block scalars (| and >) are not supported; use a quoted string"),
    Rejected("a: 1\n---\nb: 2\n", 2, 1, "multiple documents are not supported"),
    Rejected("---\n---\n", 2, 1, "multiple documents are not supported"),
    Rejected("a: 1\n...\nb: 2\n", 3, 1, "multiple documents are not supported"),
    Rejected("a: 1\n... b\n", 2, 5, "multiple documents are not supported"),
    Rejected("...\n", 1, 1, "document end marker '...' before any content"),
    Rejected("--- a: 1\n", 1, 5, "content after '---' is not supported; start the document on the next line"),
    Rejected("%YAML 1.1\n---\na: 1\n", 1, 1, "directives (%YAML, %TAG) are not supported"),
    Rejected("%TAG ! x\n", 1, 1, "directives (%YAML, %TAG) are not supported"),
    Rejected("? a\n: b\n", 1, 1, "complex mapping keys ('? ') are not supported"),
    Rejected("a: ?\n", 1, 4, "complex mapping keys ('? ') are not supported"),
    Rejected("{? a: b}\n", 1, 2, "complex mapping keys ('? ') are not supported"),
    Rejected("[a?b]\n", 1, 3, "expected ',' or ']' in flow sequence, found '?'"),
    Rejected("a: 1\na: 2\n", 2, 1, "duplicate key 'a' (first at 1:1)"),
    Rejected("- x: 1\n  y: 2\n  x: 3\n", 3, 3, "duplicate key 'x' (first at 1:3)"),
    Rejected("{a: 1, 'a': 2}\n", 1, 8, "duplicate key 'a' (first at 1:2)"),
    Rejected("\"a\": 1\na: 2\n", 2, 1, "duplicate key 'a' (first at 1:1)"),
    Rejected("a: \"x\n", 1, 4, "unterminated double-quoted string"),
    Rejected("a: 'x\n", 1, 4, "unterminated single-quoted string"),
    Rejected("a: \"x\\\n  y\"\n", 1, 4, "unterminated double-quoted string"),
    Rejected("'a\n", 1, 1, "unterminated single-quoted string"),
    Rejected("a: \"ab\\\"\n", 1, 4, "unterminated double-quoted string"),
    Rejected("a:\n  b: 1\n   c: 2\n", 3, 4, "bad indentation: expected column 3, found column 4"),
    Rejected("a:\n  b: 1\n c: 2\n", 3, 2, "bad indentation: expected column 3, found column 2"),
    Rejected("  a: 1\nb: 2\n", 2, 1, "bad indentation: expected column 3, found column 1"),
    Rejected("- a: 1\n   b: 2\n", 2, 4, "bad indentation: expected column 3, found column 4"),
    Rejected("- a:\n - x\n", 2, 2, "bad indentation: expected column 3, found column 2"),
    Rejected("a: 1\n b: 2\n", 2, 2, "bad indentation: expected column 1, found column 2"),
    Rejected("a:\n    - x\n  - y\n", 3, 3, "bad indentation: expected column 5, found column 3"),
    Rejected("a: [b, [c]]\n", 1, 8, "nested flow collections are not supported"),
    Rejected("a: {b: {c: d}}\n", 1, 8, "nested flow collections are not supported"),
    Rejected("a: [{b: c}]\n", 1, 5, "nested flow collections are not supported"),
    Rejected("a: {b: [c]}\n", 1, 8, "nested flow collections are not supported"),
    Rejected("a: @x\n", 1, 4, "plain values cannot start with '@'; quote the value"),
    Rejected("a: `x\n", 1, 4, "plain values cannot start with '`'; quote the value"),
    Rejected("a: %x\n", 1, 4, "plain values cannot start with '%'; quote the value"),
    Rejected("a: ,x\n", 1, 4, "plain values cannot start with ','; quote the value"),
    Rejected("a: ]\n", 1, 4, "unexpected ']'"),
    Rejected("a: }\n", 1, 4, "unexpected '}'"),
    Rejected("[@x]\n", 1, 2, "plain values cannot start with '@'; quote the value"),
    Rejected("[%x]\n", 1, 2, "plain values cannot start with '%'; quote the value"),
    Rejected("[|]\n", 1, 2, "plain values cannot start with '|'; quote the value"),
    Rejected("[#x]\n", 1, 2, "plain values cannot start with '#'; quote the value"),
    Rejected("a: =\n", 1, 4, "plain '=' has a special meaning in YAML; quote it"),
    Rejected("a: <<\n", 1, 4, "plain '<<' has a special meaning in YAML; quote it"),
    Rejected("<<: {a: 1}\n", 1, 1, "merge keys ('<<') are not supported"),
    Rejected("[=]\n", 1, 2, "plain '=' has a special meaning in YAML; quote it"),
    Rejected("1: a\n", 1, 1, "mapping keys must be strings; quote '1'"),
    Rejected("yes: a\n", 1, 1, "mapping keys must be strings; quote 'yes'"),
    Rejected("~: a\n", 1, 1, "mapping keys must be strings; quote '~'"),
    Rejected("null: a\n", 1, 1, "mapping keys must be strings; quote 'null'"),
    Rejected("1.5: a\n", 1, 1, "mapping keys must be strings; quote '1.5'"),
    Rejected("2001-12-14: a\n", 1, 1, "mapping keys must be strings; quote '2001-12-14'"),
    Rejected("{1: a}\n", 1, 2, "mapping keys must be strings; quote '1'"),
    Rejected("0b_: a\n", 1, 1, "malformed integer '0b_'; quote it if it is text"),
    Rejected("[a]: b\n", 1, 1, "mapping keys must be scalars, not flow collections"),
    Rejected("{a: b}: c\n", 1, 1, "mapping keys must be scalars, not flow collections"),
    Rejected("- [a]: b\n", 1, 3, "mapping keys must be scalars, not flow collections"),
    Rejected("a: b: c\n", 1, 5, "unexpected ':' in a value; quote the value if it contains ': '"),
    Rejected("a: 'b': c\n", 1, 7, "unexpected text after closing quote"),
    Rejected("a: 'b' c\n", 1, 8, "unexpected text after closing quote"),
    Rejected("\"a\"b: c\n", 1, 4, "unexpected text after closing quote"),
    Rejected("a: [b] c\n", 1, 8, "unexpected text after ']'"),
    Rejected("a: {b: c}}\n", 1, 10, "unexpected text after '}'"),
    Rejected("a: 'x'#c\n", 1, 7, "unexpected text after closing quote"),
    Rejected("a: [x]#c\n", 1, 7, "unexpected text after ']'"),
    Rejected("a: - b\n", 1, 4, "a list cannot start on the same line as its key; start it on the next line"),
    Rejected("a: -\n", 1, 4, "a list cannot start on the same line as its key; start it on the next line"),
    Rejected("a: :\n", 1, 4, "unexpected ':' in a value; quote the value if it contains ': '"),
    Rejected(": a\n", 1, 1, "expected a mapping key before ':'"),
    Rejected("- : a\n", 1, 3, "expected a mapping key before ':'"),
    Rejected("a\nb\n", 2, 1, "multi-line plain scalars are not supported; quote the value"),
    Rejected("a: b\n  c\n", 2, 3, "multi-line plain scalars are not supported; quote the value"),
    Rejected("- a\n  b\n", 2, 3, "multi-line plain scalars are not supported; quote the value"),
    Rejected("a: b\n\n  c\n", 3, 3, "multi-line plain scalars are not supported; quote the value"),
    Rejected("a: 1\n- b\n", 2, 1, "expected a mapping key, found a list item"),
    Rejected("- a\nb: 1\n", 2, 1, "expected '- ' to start a list item"),
    Rejected("a: 1\nb\n", 2, 2, "expected ':' after mapping key"),
    Rejected("a: 1\n[b]: 2\n", 2, 1, "mapping keys must be scalars, not flow collections"),
    Rejected("name value\nother: 1\n", 1, 11, "expected ':' after mapping key"),
    Rejected("'a'\nb: 1\n", 2, 1, "expected end of document after the top-level value"),
    Rejected("[a]\nb\n", 2, 1, "expected end of document after the top-level value"),
    Rejected("a: [b, c\n", 1, 4, "unclosed '[': flow collections must end on the line they start"),
    Rejected("a: {b: c\n", 1, 4, "unclosed '{': flow collections must end on the line they start"),
    Rejected("a: [b, c # d]\n", 1, 4, "unclosed '[': flow collections must end on the line they start"),
    Rejected("a: [b,\n c]\n", 1, 4, "unclosed '[': flow collections must end on the line they start"),
    Rejected("[a: b]\n", 1, 3, "expected ',' or ']' in flow sequence, found ':'"),
    Rejected("[a, 'b': c]\n", 1, 8, "expected ',' or ']' in flow sequence, found ':'"),
    Rejected("{a, b}\n", 1, 3, "expected ':' after mapping key"),
    Rejected("{a:1}\n", 1, 5, "expected ':' after mapping key (put a space after ':')"),
    Rejected("{a b}\n", 1, 5, "expected ':' after mapping key"),
    Rejected("[,]\n", 1, 2, "expected a value before ','"),
    Rejected("[a,,b]\n", 1, 4, "expected a value before ','"),
    Rejected("{,}\n", 1, 2, "expected a mapping key before ','"),
    Rejected("[- a]\n", 1, 2, "list items ('- ') are not allowed inside a flow collection"),
    Rejected("[:x]\n", 1, 2, "plain values in flow collections cannot start with ':'; quote the value"),
    Rejected("{a: b c: d}\n", 1, 8, "expected ',' or '}' in flow mapping, found ':'"),
    Rejected("a: \"\\q\"\n", 1, 5, "unknown escape sequence '\\q'"),
    Rejected("a: \"\\x4\"\n", 1, 5, "expected 2 hexadecimal digits after '\\x'"),
    Rejected("a: \"\\u12G4\"\n", 1, 5, "expected 4 hexadecimal digits after '\\u'"),
    Rejected("a: \"\\uD800\"\n", 1, 5, "invalid unicode escape '\\uD800'"),
    Rejected("a: \"\\U00110000\"\n", 1, 5, "invalid unicode escape '\\U00110000'"),
    Rejected("a: x\u{0}y\n", 1, 5, "control character U+0000 is not allowed; use an escape in a double-quoted string"),
    Rejected("a: \"x\u{7}y\"\n", 1, 6, "control character U+0007 is not allowed; use an escape in a double-quoted string"),
    Rejected("# c\u{1}\n", 1, 4, "control character U+0001 is not allowed; use an escape in a double-quoted string"),
    Rejected("a: x\u{7F}y\n", 1, 5, "control character U+007F is not allowed; use an escape in a double-quoted string"),
    Rejected("a: x\u{85}y\n", 1, 5, "unicode line break U+0085 is not allowed; use an escape in a double-quoted string"),
    Rejected("a: x\u{2028}y\n", 1, 5, "unicode line break U+2028 is not allowed; use an escape in a double-quoted string"),
    Rejected("a: x\u{FFFE}y\n", 1, 5, "non-character U+FFFE is not allowed"),
    Rejected("a: 0x_\n", 1, 4, "malformed integer '0x_'; quote it if it is text"),
    Rejected("a: 0b_\n", 1, 4, "malformed integer '0b_'; quote it if it is text"),
    Rejected("a: 2023-13-01\n", 1, 4, "invalid date or time '2023-13-01'; quote it if it is text"),
    Rejected("a: 2023-02-29\n", 1, 4, "invalid date or time '2023-02-29'; quote it if it is text"),
    Rejected("a: 0000-01-01\n", 1, 4, "invalid date or time '0000-01-01'; quote it if it is text"),
    Rejected("a: 2001-12-14 24:00:00\n", 1, 4, "invalid date or time '2001-12-14 24:00:00'; quote it if it is text"),
    Rejected("a: 2001-12-14 1:00:00 +24\n", 1, 4, "invalid date or time '2001-12-14 1:00:00 +24'; quote it if it is text"),
    Rejected("é: \"x\n", 1, 4, "unterminated double-quoted string"),
    Rejected("clé: [a, [b]]\n", 1, 10, "nested flow collections are not supported"),
    Rejected("\u{FEFF}a: @\n", 1, 4, "plain values cannot start with '@'; quote the value"),
  ]

  @Test(arguments: accepted)
  func accepts(_ example: Accepted) throws {
    #expect(try YAMLLite.parse(example.yaml).canonicalJSON() == example.json)
  }

  @Test(arguments: rejected)
  func rejects(_ example: Rejected) {
    #expect(diagnostic(example.yaml) == example.diagnostic)
  }

  // MARK: Locations

  @Test func emptyDocumentIsNullAtOneOne() throws {
    for text in ["", "\n\n", "# only a comment\n", "---\n", "   \n  # c\n"] {
      let root = try YAMLLite.parse(text)
      #expect(root.scalar?.isNull == true)
      #expect(root.location == NetProbe.SourceLocation(line: 1, column: 1))
    }
  }

  @Test func nodesRememberWhereTheyStart() throws {
    let text = """
      # comment
      top:
        list:
          - first
          -   [a, 'b']
          - key: {k: v}
            other:
        quoted: "q"
        after:
      """
    let root = try YAMLLite.parse(text)
    #expect(root.location == at(2, 1))
    let top = try #require(root.mapping?.first)
    #expect(top.key.location == at(2, 1))
    #expect(top.value.location == at(3, 3))
    let list = try #require(top.value.mapping?.first?.value)
    #expect(list.location == at(4, 5))
    let items = try #require(list.sequence)
    #expect(items.map(\.location) == [at(4, 7), at(5, 9), at(6, 7)])
    #expect(items[1].sequence?.map(\.location) == [at(5, 10), at(5, 13)])
    let compact = try #require(items[2].mapping)
    #expect(compact.map(\.key.location) == [at(6, 7), at(7, 7)])
    #expect(compact[0].value.location == at(6, 12))
    #expect(compact[0].value.mapping?.first?.value.location == at(6, 16))
    // `key:` with nothing after it: a null right after the colon.
    #expect(compact[1].value.scalar?.isNull == true)
    #expect(compact[1].value.location == at(7, 13))
    let rest = try #require(top.value.mapping)
    #expect(rest[1].value.scalar?.style == .doubleQuoted)
    #expect(rest[1].value.location == at(8, 11))
    #expect(rest[2].value.location == at(9, 9))
  }

  @Test func emptyValuesAreNullRightAfterTheirIndicator() throws {
    let root = try YAMLLite.parse("- \n-   # c\n- {a: , b:}\n")
    let items = try #require(root.sequence)
    #expect(items[0].location == at(1, 2))
    #expect(items[1].location == at(2, 2))
    let flow = try #require(items[2].mapping)
    #expect(flow.map(\.value.location) == [at(3, 6), at(3, 11)])
    #expect(flow.allSatisfy { $0.value.scalar?.isNull == true })
  }

  @Test func columnsCountUnicodeScalars() throws {
    let root = try YAMLLite.parse("clé: \"é🙂\"\nnom: x\n")
    let entries = try #require(root.mapping)
    #expect(entries[0].value.location == at(1, 6))
    #expect(diagnostic("clé: 🙂 @x") == nil)
    #expect(diagnostic("é🙂: [a, [b]]")?.location == at(1, 9))
    #expect(diagnostic("'é🙂'x: 1")?.location == at(1, 5))
    // e + U+0301 is one character on screen but two scalars: the column counts scalars.
    #expect(diagnostic("k: \"e\u{301}\" x")?.location == at(1, 9))
  }

  @Test func lineBreaksAndByteOrderMark() throws {
    #expect(diagnostic("a: 1\r\nb: @\r\n")?.location == at(2, 4))
    #expect(diagnostic("a: 1\rb: @\r")?.location == at(2, 4))
    // The byte order mark takes no column, as in an editor.
    #expect(diagnostic("\u{FEFF}a: @")?.location == at(1, 4))
    #expect(try YAMLLite.parse("\u{FEFF}a: 1").mapping?.first?.key.location == at(1, 1))
  }

  @Test func scalarStylesAreKept() throws {
    let root = try YAMLLite.parse("a: plain\nb: 'single'\nc: \"double\"\n")
    let styles = try #require(root.mapping).map { $0.value.scalar?.style }
    #expect(styles == [.plain, .singleQuoted, .doubleQuoted])
  }

  @Test func invalidUTF8ArrivesAsReplacementCharacters() throws {
    let bytes: [UInt8] = Array("a: x".utf8) + [0xFF, 0xC3] + Array("\nb: 1\n".utf8)
    let root = try YAMLLite.parse(String(decoding: bytes, as: UTF8.self))
    #expect(root.canonicalJSON() == "{\"a\":\"x\u{FFFD}\u{FFFD}\",\"b\":1}")
  }

  // MARK: Limits

  @Test func mappingKeysUpTo1024Characters() throws {
    let longest = String(repeating: "k", count: 1024)
    #expect(try YAMLLite.parse("\(longest): 1").mapping?.first?.key.text == longest)
    // Measured from the key's first character (the quote) to the colon, as PyYAML does.
    #expect(try YAMLLite.parse("'\(longest.dropLast(3))' : 1").mapping?.count == 1)
    #expect(diagnostic("'\(longest.dropLast(2))' : 1")?.location == at(1, 1))
    #expect(
      diagnostic("a:\n  \(longest)k: 1")
        == ConfigDiagnostic(at(2, 3), "mapping keys must be at most 1024 characters long"))
    #expect(diagnostic("{\(longest)k: 1}")?.message == "mapping keys must be at most 1024 characters long")
  }

  @Test func nestingUpTo100Levels() throws {
    let hundred = (0..<100).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n")
    let deepest = try YAMLLite.parse(hundred + "\n" + String(repeating: " ", count: 100) + "v")
    #expect(deepest.mapping?.first?.key.text == "k")
    #expect(try YAMLLite.parse(String(repeating: "- ", count: 99) + "[x]").sequence?.count == 1)
    #expect(
      diagnostic(String(repeating: "- ", count: 100) + "[x]")
        == ConfigDiagnostic(at(1, 201), "nesting deeper than 100 levels is not supported"))
    // Deep enough to overflow a stack without the limit; refused quickly instead.
    #expect(diagnostic(String(repeating: "- ", count: 200_000))?.location == at(1, 201))
  }

  @Test func numbersPyYAMLCannotConstructAreRefused() throws {
    let digits = String(repeating: "7", count: 4300)
    #expect(try YAMLLite.parse("a: \(digits)").mapping?.first?.value.scalar?.resolved == .bigInt(digits))
    #expect(
      diagnostic("a: \(digits)7")
        == ConfigDiagnostic(at(1, 4), "integer with more than 4300 digits; quote it if it is text"))
    let fourteen = "1" + String(repeating: ":00", count: 13) + ".5"
    #expect(try YAMLLite.parse("a: \(fourteen)").mapping?.first?.value.scalar?.resolved != nil)
    #expect(diagnostic("a: 1:\(fourteen)")?.message.hasPrefix("sexagesimal number") == true)
  }

  @Test func largeInputsStayLinear() throws {
    let many = (0..<50_000).map { "k\($0): [a, 'b', \"c\", 1, yes]" }.joined(separator: "\n")
    let clock = ContinuousClock()
    var count: Int?
    let elapsed = clock.measure { count = try? YAMLLite.parse(many).mapping?.count }
    #expect(count == 50_000)
    #expect(elapsed < .seconds(20))
    let longLine = "a: [" + String(repeating: "x, ", count: 200_000) + "y]"
    #expect(try YAMLLite.parse(longLine).mapping?.first?.value.sequence?.count == 200_001)
  }

  // MARK: Golden files

  /// Each `Fixtures/invalid/yaml-*.yml` has its syntax errors: the golden `.errors` lines
  /// are exactly what the reader reports, every error it recovered from included. (The
  /// config loader's golden test covers the same files end to end.)
  @Test func invalidFixturesMatchTheirGoldenErrors() throws {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("Fixtures/invalid")
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
      .filter { $0.hasPrefix("yaml-") && $0.hasSuffix(".yml") }
      .sorted()
    #expect(names.count >= 10)
    for name in names {
      let text = String(decoding: try Data(contentsOf: directory.appendingPathComponent(name)), as: UTF8.self)
      let golden = try String(
        contentsOf: directory.appendingPathComponent(String(name.dropLast(4)) + ".errors"), encoding: .utf8)
      var found: String?
      if case .failure(let errors) = YAMLLite.parseReportingAll(text) {
        found = errors.diagnostics.map { $0.formatted(file: name) + "\n" }.joined()
      }
      #expect(found == golden, "\(name)")
    }
  }

  // MARK: Helpers

  func diagnostic(_ text: String) -> ConfigDiagnostic? {
    do {
      _ = try YAMLLite.parse(text)
      return nil
    } catch {
      return error
    }
  }

  func at(_ line: Int, _ column: Int) -> NetProbe.SourceLocation {
    NetProbe.SourceLocation(line: line, column: column)
  }
}
