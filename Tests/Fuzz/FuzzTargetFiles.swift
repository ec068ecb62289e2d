import Foundation
import NetProbe

/// Target files in both formats, valid or nearly so: Prometheus' own examples and the
/// constructs the reader gives a meaning to (ports, IPv6 in brackets, meta labels, escapes).
private let targetFileSeeds: [(String, TargetFileFormat)] = [
  (
    "[\n\t{\n\t\t\"targets\": [\"localhost:9090\", \"example.org:443\"],\n\t\t\"labels\": {\n\t\t\t\"foo\": \"bar\"\n\t\t}\n\t},\n\t{\n\t\t\"targets\": [\"my.domain\"]\n\t}\n]\n",
    .json
  ),
  ("- targets: ['localhost:9090', 'example.org:443']\n  labels:\n    foo: bar\n\n- targets: ['my.domain']\n", .yaml),
  (
    "[{\"targets\": [\"198.18.0.1\", \"[2001:db8::1]:80\"], \"labels\": {\"__name\": \"a\", \"city\": \"K\\u00f8ge \\ud83d\\ude00\"}}, null]",
    .json
  ),
  ("- targets:\n  - 198.18.0.1\n  - 2001:db8::2\n  labels: {__name: b, rack: r1, n: 1}\n- null\n", .yaml),
  ("[{\"targets\": [], \"labels\": {}}, {\"targets\": [\"a.example\"], \"labels\": {\"x\": null}}, [], 1.5e3, true]", .json),
]

private let targetFileTokens = [
  "{", "}", "[", "]", ",", ":", "\"", "'", "\\", "\\u", "\\ud800", "\\udc00", "\\n", "null", "true", "1e5", "-0", "01",
  "targets", "labels", "\"targets\": [", "\"labels\": {", "- targets: ", "  labels:\n", "__meta_", "__name",
  "198.18.0.1", "2001:db8::1", "[::1]:80", ":9100", "224.0.0.1", "0.0.0.0", "a.example", "http://", "\n", "\t", " ",
  "é", "🙂", "\u{0}", "\u{FEFF}",
]

/// Feeds random and mutated target files to `TargetFileReader.read` (JSON and YAML, with
/// and without a name label) and checks what it says: targets it accepts are unique,
/// unicast hosts or DNS names; a refusal names a place in the file; and JSON that the
/// reader accepts is JSON to Foundation's parser too. Returns the inputs run.
func fuzzTargetFiles(iterations: Int, seed: UInt64) -> Int {
  var mutator = Mutator(seed: seed, dictionary: targetFileTokens)
  var entry = TargetFilesConfig(files: ["/fuzz/*.json"], options: ProbeOptions(), location: SourceLocation(line: 1, column: 1))
  entry.maxTargetsPerFile = 50
  var accepted = 0
  var targets = 0
  for index in 0..<iterations {
    let (seedText, format) = targetFileSeeds[(index / 2) % targetFileSeeds.count]
    let input = index % 2 == 0 ? mutator.randomInput(maxLength: 200) : mutator.mutate(Array(seedText.utf8))
    let text = String(decoding: input, as: UTF8.self)
    entry.nameLabel = index % 3 == 0 ? "__name" : nil
    switch TargetFileReader.read(text, format: format, entry: entry) {
    case .success(let found):
      accepted += 1
      targets += found.count
      precondition(Set(found.map(\.name)).count == found.count, "duplicate names accepted: \(text)")
      for target in found {
        let host = target.host
        precondition(TargetFileReader.host(of: host) == host, "accepted a target that is not a host: \(host)")
        if let address = target.address { precondition(!address.isMulticast && !address.isUnspecified, "accepted \(address)") }
      }
      if format == .json {
        precondition(
          (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil,
          "JSON accepted here but not by Foundation: \(text)")
      }
    case .failure(let errors):
      precondition(!errors.diagnostics.isEmpty, "a failure without a message")
      for diagnostic in errors.diagnostics {
        precondition(diagnostic.location.line >= 1 && diagnostic.location.column >= 1, "no place for: \(diagnostic)")
      }
    }
  }
  print("targetfile: \(iterations) inputs, \(accepted) accepted with \(targets) targets, no crash (seed \(seed))")
  return iterations
}
