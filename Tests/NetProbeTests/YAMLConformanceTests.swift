import Foundation
import Testing

@testable import NetProbe

/// YAML-lite promises that every file it accepts means the same to any YAML 1.1 reader.
/// This test holds it to that on every shipped configuration and fixture: each file is read
/// by YAMLLite and by PyYAML's `safe_load`, and the two trees must be equal, types included
/// (`true` is not `1`, `1.0` is not `1`, a date is not its text).
@Suite struct YAMLConformanceTests {
  /// The package root, three levels above this file.
  static let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// Directories whose `.yml` files must be valid YAML-lite, searched recursively.
  static let directories = ["config", "Tests/NetProbeTests/Fixtures/valid", "Tests/NetProbeTests/Fixtures/yaml"]
  /// Fixtures that break the schema, not YAML: valid YAML-lite all the same. (The invalid
  /// `yaml-*` ones are YAML-lite errors and are checked against their golden files.)
  static let schemaFixturePrefix = "Tests/NetProbeTests/Fixtures/invalid/schema-"

  @Test func everyFixtureReadsAsPyYAMLReadsIt() throws {
    let files = Self.yamlFiles()
    #expect(files.count >= 8, "expected YAML fixtures under \(Self.directories)")

    var manifest: [[String: String]] = []
    for file in files {
      let text = String(decoding: try Data(contentsOf: file), as: UTF8.self)
      do {
        manifest.append(["path": file.path, "json": try YAMLLite.parse(text).canonicalJSON()])
      } catch {
        Issue.record("\(error.formatted(file: Self.relative(file))) (YAMLLite rejects a file meant to be valid)")
      }
    }

    let manifestURL = FileManager.default.temporaryDirectory
      .appendingPathComponent("yaml-conformance-\(UUID().uuidString).json")
    try JSONSerialization.data(withJSONObject: manifest).write(to: manifestURL)
    defer { try? FileManager.default.removeItem(at: manifestURL) }

    let (status, output) = try Self.runPython(Self.comparator, arguments: [manifestURL.path])
    guard status == 0, output.contains("DONE \(manifest.count)") else {
      Issue.record(
        """
        the conformance check needs python3 with the yaml module (PyYAML); `make test` installs \
        python3-yaml. python3 exited with status \(status):
        \(output)
        """)
      return
    }
    for line in output.split(separator: "\n") where line.hasPrefix("FAIL\t") {
      let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
      let path = fields.count > 1 ? Self.relative(URL(fileURLWithPath: fields[1])) : "?"
      Issue.record("\(path): YAMLLite and PyYAML disagree: \(fields.count > 2 ? fields[2] : line[...].description)")
    }
    let agreed = output.split(separator: "\n").filter { $0.hasPrefix("OK\t") }.count
    #expect(agreed == manifest.count)
  }

  static func yamlFiles() -> [URL] {
    var files: [URL] = []
    for directory in directories {
      let url = root.appendingPathComponent(directory)
      guard let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: nil) else { continue }
      for case let file as URL in walker where file.pathExtension == "yml" {
        files.append(file)
      }
    }
    let invalid = root.appendingPathComponent("Tests/NetProbeTests/Fixtures/invalid")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: invalid.path)) ?? []
    for name in names where name.hasSuffix(".yml") && relative(invalid.appendingPathComponent(name)).hasPrefix(schemaFixturePrefix) {
      files.append(invalid.appendingPathComponent(name))
    }
    return files.sorted { $0.path < $1.path }
  }

  static func relative(_ file: URL) -> String {
    let prefix = root.path + "/"
    return file.path.hasPrefix(prefix) ? String(file.path.dropFirst(prefix.count)) : file.path
  }

  /// Runs `python3 -c script arguments…` once; stdout and stderr together.
  static func runPython(_ script: String, arguments: [String]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
  }

  /// Reads each file with `yaml.safe_load` and compares it with YAMLLite's canonical JSON
  /// (see `YAMLNode.canonicalJSON()` for the one-key objects that carry what JSON lacks).
  /// Prints `OK\tpath` or `FAIL\tpath\treason` per file, then `DONE count`.
  static let comparator = #"""
    import datetime, json, math, sys
    try:
        import yaml
    except ImportError:
        print("python3 cannot import yaml (PyYAML)")
        sys.exit(3)

    def differ(s, y, path):
        """Why the YAMLLite value s (from JSON) does not mean the PyYAML value y, or None."""
        if isinstance(y, dict):
            if not isinstance(s, dict):
                return f"{path}: PyYAML has a mapping, YAMLLite has {s!r}"
            if list(s) != list(y):
                return f"{path}: keys {list(y)!r} (PyYAML) vs {list(s)!r} (YAMLLite)"
            for key in y:
                reason = differ(s[key], y[key], f"{path}.{key}")
                if reason:
                    return reason
            return None
        if isinstance(y, list):
            if not isinstance(s, list) or len(s) != len(y):
                return f"{path}: PyYAML has {y!r}, YAMLLite has {s!r}"
            for index, (a, b) in enumerate(zip(s, y)):
                reason = differ(a, b, f"{path}[{index}]")
                if reason:
                    return reason
            return None
        if isinstance(s, dict) and len(s) == 1:
            (tag, text), = s.items()
            if tag == "!!timestamp":
                same = (isinstance(y, (datetime.date, datetime.datetime))
                        and y.isoformat() == text
                        and ("T" in text) == isinstance(y, datetime.datetime))
                return None if same else f"{path}: PyYAML has {y!r}, YAMLLite has timestamp {text!r}"
            if tag == "!!float":
                same = type(y) is float and (
                    (text == ".nan" and math.isnan(y)) or (text == ".inf" and y == math.inf)
                    or (text == "-.inf" and y == -math.inf))
                return None if same else f"{path}: PyYAML has {y!r}, YAMLLite has {text}"
            if tag == "!!int":
                same = type(y) is int and yaml.safe_load(text) == y and not (-2**63 <= y < 2**63)
                return None if same else f"{path}: PyYAML has {y!r}, YAMLLite has big integer {text}"
        if type(s) is not type(y):
            return f"{path}: PyYAML has {type(y).__name__} {y!r}, YAMLLite has {type(s).__name__} {s!r}"
        if type(y) is float:
            same = s == y and math.copysign(1.0, s) == math.copysign(1.0, y)
            return None if same else f"{path}: PyYAML has {y!r}, YAMLLite has {s!r}"
        return None if s == y else f"{path}: PyYAML has {y!r}, YAMLLite has {s!r}"

    with open(sys.argv[1], encoding="utf-8") as manifest_file:
        manifest = json.load(manifest_file)
    for entry in manifest:
        path = entry["path"]
        try:
            with open(path, "rb") as document:
                expected = yaml.safe_load(document)
            reason = differ(json.loads(entry["json"]), expected, "$")
        except Exception as error:
            reason = "PyYAML fails: " + " ".join(str(error).split())
        print(("FAIL\t" + path + "\t" + reason) if reason else ("OK\t" + path))
    print(f"DONE {len(manifest)}")
    """#
}
