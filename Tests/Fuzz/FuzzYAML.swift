import Foundation
import NetProbe

/// Used when the fixtures are not reachable from the current directory (the fuzzer run
/// from elsewhere): one sample per construct the reader knows, valid or nearly so.
private let builtInYAMLSeeds: [String] = [
  "defaults:\n  interval: 1s\n  labels: {env: prod, 'team': \"net\"}\ntargets:\n  - name: a\n    host: 198.18.0.1\n",
  "---\n# comment\nlist:\n- 1\n- 0x1F\n- 1_000\n- 1:30\n- .inf\n- ~\n- yes\n- 2001-12-14t21:59:43.10-05:00\n...\n",
  "- - a\n  - b\n-\n  k: v\n- [x, 'y', \"z\\u00e9\\x41\\n\"]\n- {}\n- []\n",
  "a:\n  b:\n    c:\n      d: 'it''s'\n  e: \"\\t\\\\\\\"\"\n",
  "\u{FEFF}key: value # trailing\n\n  # indented comment\nother: -5\n",
  "k: &a v\nj: *a\nt: !!str x\nb: |\n  x\n%YAML 1.1\n? c\n",
  "x: [a, [b]]\ny: {a: 1, a: 2}\nz: \"unterminated\n\tw: tab\n",
]

/// Tokens YAML gives a meaning to, spliced into inputs to reach the rarer branches.
private let yamlTokens = [
  ": ", "- ", "\n", "\r\n", "  ", "\t", "#", " #", "---\n", "...\n", "[", "]", "{", "}", ", ",
  "'", "''", "\"", "\\", "\\x4", "\\u00e9", "\\UFFFFFFFF", "\\uD800", "&a", "*a", "!!str", "|",
  ">", "%YAML", "? ", "~", "null", "yes", "No", "0x", "0b_", "0o7", "1_0", "1:30", "-.inf",
  ".NaN", "1.5e+3", "2001-12-14", "2001-13-40 25:61:61 +99", "<<", "=", "99999999999999999999",
  "\u{0}", "\u{85}", "\u{2028}", "\u{FEFF}", "é", "🙂",
]

/// Feeds random and mutated documents to `YAMLLite.parse` and, for those it accepts, walks
/// the tree: `canonicalJSON()`, every scalar's `resolved`, and the schema's checks. Returns the inputs run; a
/// crash or a hang is the failure, and the seed replays it.
func fuzzYAML(iterations: Int, seed: UInt64) -> Int {
  var mutator = Mutator(seed: seed, dictionary: yamlTokens)
  let seeds = yamlSeedFiles().map { Array($0.utf8) }
  var accepted = 0
  var valid = 0
  for index in 0..<iterations {
    let input =
      index % 2 == 0
      ? mutator.randomInput(maxLength: 256)
      : mutator.mutate(seeds[(index / 2) % seeds.count])
    guard let root = try? YAMLLite.parse(String(decoding: input, as: UTF8.self)) else { continue }
    accepted += 1
    _ = root.canonicalJSON()
    touchScalars(root)
    // And the schema on top: every value check and cross-reference, with its messages.
    switch ConfigSchema.decode(root) {
    case .success: valid += 1
    case .failure(let errors): precondition(!errors.diagnostics.isEmpty, "a failure without a message")
    }
  }
  print(
    "yaml: \(iterations) inputs from \(seeds.count) seeds, \(accepted) accepted, \(valid) valid configurations, no crash (seed \(seed))")
  return iterations
}

/// Every `.yml` under config/ and the test fixtures, relative to the current directory (the
/// package root under `make fuzz`), or the built-in samples when there are none.
private func yamlSeedFiles() -> [String] {
  let files = FileManager.default
  var texts: [String] = []
  for directory in ["config", "Tests/NetProbeTests/Fixtures"] {
    guard let walker = files.enumerator(atPath: directory) else { continue }
    for case let path as String in walker where path.hasSuffix(".yml") {
      if let data = files.contents(atPath: directory + "/" + path) {
        texts.append(String(decoding: data, as: UTF8.self))
      }
    }
  }
  return texts.isEmpty ? builtInYAMLSeeds : texts.sorted() + builtInYAMLSeeds
}

private func touchScalars(_ node: YAMLNode) {
  switch node.content {
  case .scalar(let scalar):
    _ = scalar.resolved
    _ = scalar.isPlainString
  case .sequence(let items):
    items.forEach(touchScalars)
  case .mapping(let entries):
    for entry in entries {
      _ = entry.key.resolved
      touchScalars(entry.value)
    }
  }
  _ = node.kindDescription
}
