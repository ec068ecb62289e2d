import Foundation
@preconcurrency import Glibc
import Logging
import Testing
@testable import NetProbe

/// Target files in Prometheus' file_sd format (issue 15): the reader against Prometheus' own
/// examples, its errors with line and column, and the rules that keep a bad file harmless.
@Suite struct TargetFilesTests {
  static let entry = TargetFilesConfig(files: ["/x/*.json"], options: ProbeOptions(), location: SourceLocation(line: 2, column: 5))

  func read(_ text: String, _ format: TargetFileFormat, entry: TargetFilesConfig = Self.entry) -> Result<[TargetConfig], ConfigErrors> {
    TargetFileReader.read(text, format: format, entry: entry)
  }

  func errors(_ text: String, _ format: TargetFileFormat, entry: TargetFilesConfig = Self.entry) -> [String] {
    switch read(text, format, entry: entry) {
    case .success: ["<valid>"]
    case .failure(let errors): errors.diagnostics.map(\.description)
    }
  }

  /// Name, host and custom labels of each target, for comparisons.
  func summary(_ result: Result<[TargetConfig], ConfigErrors>) -> [String] {
    switch result {
    case .success(let targets):
      targets.map { t in ([t.name, t.host] + t.options.labels.map { "\($0.name)=\($0.value)" }).joined(separator: " ") }
    case .failure(let errors): errors.lines
    }
  }

  // Prometheus' discovery/file/fixtures: target_groups.json (tab-indented), target_groups.yml
  // and valid3.yml (the same groups in double quotes) all mean these targets.
  static let prometheusJSON =
    "[\n\t{\n\t\t\"targets\": [\"localhost:9090\", \"example.org:443\"],\n\t\t\"labels\": {\n\t\t\t\"foo\": \"bar\"\n\t\t}\n\t},\n\t{\n\t\t\"targets\": [\"my.domain\"]\n\t}\n]\n"
  static let prometheusYAML = "- targets: ['localhost:9090', 'example.org:443']\n  labels:\n    foo: bar\n\n- targets: ['my.domain']\n"
  static let prometheusYAMLQuoted =
    "# the YAML structure is identical to valid.yml but the raw data is different.\n- targets: [\"localhost:9090\", \"example.org:443\"]\n  labels:\n    foo: bar\n\n- targets: [\"my.domain\"]\n"
  static let expected = ["localhost localhost foo=bar", "example.org example.org foo=bar", "my.domain my.domain"]

  @Test func readsPrometheusOwnExamples() {
    #expect(summary(read(Self.prometheusJSON, .json)) == Self.expected)
    #expect(summary(read(Self.prometheusYAML, .yaml)) == Self.expected)
    #expect(summary(read(Self.prometheusYAMLQuoted, .yaml)) == Self.expected)
  }

  @Test func prometheusNullGroupIsAnError() {
    // discovery/file/fixtures/invalid_nil.yml: Prometheus refuses "nil target group item".
    let text = "- targets: ['localhost:9090', 'example.org:443']\n  labels:\n    foo: bar\n\n- null\n"
    #expect(errors(text, .yaml) == ["5:3: group 2 is null: expected {targets: [...], labels: {...}}"])
    #expect(errors("[{\"targets\": [\"a.example\"]}, null]", .json) == ["1:30: group 2 is null: expected {targets: [...], labels: {...}}"])
  }

  @Test func emptyFilesAndListsGiveNoTargets() {
    #expect(summary(read("", .yaml)).isEmpty)
    #expect(summary(read("[]", .json)).isEmpty)
    #expect(summary(read("- targets: []\n  labels: {a: b}\n", .yaml)).isEmpty)
    #expect(errors("", .json) == ["1:1: the file is empty: expected a JSON list of target groups"])
  }

  @Test func unknownKeysAreErrorsWithASuggestionInBothFormats() {
    #expect(errors("[{\"target\": [\"a.example\"]}]", .json) == ["1:3: unknown key 'target' in group 1 (did you mean 'targets'?)"])
    #expect(
      errors("- targets: [a.example]\n  lables: {a: b}\n", .yaml) == ["2:3: unknown key 'lables' in group 1 (did you mean 'labels'?)"])
  }

  @Test func jsonSyntaxErrorsNameLineAndColumn() {
    let cases: [(String, String)] = [
      ("[\n  {\"targets\": [\"a.example\",]}\n]", "2:28: trailing comma before ']': JSON allows none"),
      ("[{\"targets\": ['a.example']}]", "1:15: JSON strings take double quotes (\"), not single quotes"),
      ("[{\"targets\": [\"a.example\"]}\n", "2:1: unexpected end of file: expected ',' or ']' to close the list opened at 1:1"),
      ("[{\"targets\": [\"a\", \"b\"], \"targets\": []}]", "1:26: duplicate key 'targets' (first at 1:3)"),
      ("[] []", "1:4: unexpected '[' after the end of the JSON value"),
      ("[01]", "1:3: a JSON number has no leading zeros"),
      ("[\"\\ud800\"]", "1:3: a high surrogate \\ud800 must be followed by a low one"),
      ("// hosts\n[]", "1:1: JSON has no comments"),
      ("[\"é\", x]", "1:7: unexpected 'x': expected a JSON value (object, list, string, number, true, false or null)"),
    ]
    for (text, message) in cases { #expect(errors(text, .json) == [message], "\(text)") }
  }

  @Test func jsonValuesMustBeStringsWhereGoWantsStrings() {
    #expect(errors("[{\"targets\": [42]}]", .json) == ["1:15: expected a target (a host or an address) as a JSON string, got 42"])
    #expect(
      errors("[{\"targets\": [\"a.example\"], \"labels\": {\"n\": 1}}]", .json) == ["1:45: expected a label value as a JSON string, got 1"])
    // YAML gives a string field the scalar's text, as go-yaml does.
    #expect(summary(read("- targets: [a.example]\n  labels: {port: 80, up: yes}\n", .yaml)) == ["a.example a.example port=80 up=yes"])
    // JSON escapes are decoded.
    #expect(
      summary(read("[{\"targets\": [\"a.example\"], \"labels\": {\"city\": \"K\\u00f8ge \\ud83d\\ude00\"}}]", .json)) == [
        "a.example a.example city=Køge 😀"
      ])
  }

  @Test func aTargetIsAHostOrAnAddressWithAnOptionalPort() {
    let hosts: [(String, String?)] = [
      ("198.18.0.1", "198.18.0.1"), ("198.18.0.1:9100", "198.18.0.1"), ("2001:db8::1", "2001:db8::1"),
      ("[2001:db8::1]:9100", "2001:db8::1"), ("db1.example.net", "db1.example.net"), ("db1.example.net:443", "db1.example.net"),
      ("http://db1.example.net", nil), ("db1.example.net:http", nil), ("db1.example.net:70000", nil), ("[198.18.0.1]:80", nil),
      ("a b", nil), ("198.18.0.1/24", nil), ("", nil),
    ]
    for (text, host) in hosts { #expect(TargetFileReader.host(of: text) == host, "\(text)") }
    #expect(
      errors("- targets: ['http://x.example', 224.0.0.1]\n", .yaml) == [
        "1:13: 'http://x.example' is not a host: expected an IP address or a DNS name, optionally with :port",
        "1:33: cannot ping 224.0.0.1: expected a unicast address",
      ])
  }

  @Test func metaLabelsAreKeptOutAndTheNameLabelNamesTheTarget() {
    var entry = Self.entry
    entry.nameLabel = "__meta_name"
    entry.options.labels = [Label("source", "cmdb"), Label("role", "any")]
    let text = """
      [{"targets": ["198.18.0.1"], "labels": {"__meta_name": "core-1", "__meta_rack": "r1", "role": "db"}},
       {"targets": ["198.18.0.2"]}]
      """
    #expect(
      summary(read(text, .json, entry: entry)) == ["core-1 198.18.0.1 source=cmdb role=db", "198.18.0.2 198.18.0.2 source=cmdb role=any"])
    let shared = "[{\"targets\": [\"198.18.0.1\", \"198.18.0.2\"], \"labels\": {\"__meta_name\": \"core\"}}]"
    #expect(
      errors(shared, .json, entry: entry) == [
        "1:14: group 1 names its targets by label '__meta_name', so it can hold only one target: 2 would share one name"
      ])
  }

  @Test func invalidAndReservedLabelsAreRefused() {
    #expect(
      errors("- targets: [a.example]\n  labels: {1x: a, target: b, job: c}\n", .yaml) == [
        "2:12: invalid label name '1x': expected [a-zA-Z_][a-zA-Z0-9_]*",
        "2:19: label 'target' is set by the exporter on target series; rename it (or prefix it with __ to keep it out of the series)",
        "2:30: label 'job' is set by Prometheus when it scrapes; rename it (or prefix it with __ to keep it out of the series)",
      ])
  }

  @Test func duplicatesInAFileAndTheEntrySettingsAreChecked() {
    #expect(errors("- targets: [198.18.0.1, '198.18.0.1:80']\n", .yaml) == ["1:25: duplicate target '198.18.0.1' (first at 1:13)"])
    var entry = Self.entry
    entry.options.family = .ip6
    #expect(
      errors("- targets: [198.18.0.1]\n", .yaml, entry: entry) == ["1:13: 198.18.0.1 is an ip4 address but this entry sets family ip6"])
    entry = Self.entry
    entry.maxTargetsPerFile = 2
    #expect(
      errors("- targets: [198.18.0.1, 198.18.0.2, 198.18.0.3]\n", .yaml, entry: entry) == [
        "1:1: 3 targets, over max_targets_per_file (2) of the target_files entry at 2:5"
      ])
  }

  @Test func patternsFollowPrometheus() {
    for good in ["/etc/t/*.json", "t.yml", "/etc/t/hosts-*.YAML", "/etc/t/a?.json"] {
      #expect(TargetFilesConfig.isValidPattern(good), "\(good)")
    }
    for bad in ["/etc/*/t.json", "/etc/t/*.txt", "/etc/t/**.json", "/etc/t/*", "/etc/t/a.json.bak"] {
      #expect(!TargetFilesConfig.isValidPattern(bad), "\(bad)")
    }
    #expect(TargetFileWatcher.directory(of: "/etc/t/*.json") == "/etc/t")
    #expect(TargetFileWatcher.directory(of: "t.json") == ".")
  }

  @Test func theConfigurationEntryIsCheckedAndInheritsDefaults() throws {
    let text = """
      defaults:
        interval: 2s
      target_files:
        - files: [targets/*.json]
          timeout: 500ms
          labels: {source: cmdb}
      """
    let config = try loadConfig(text).get()
    #expect(config.targetFiles.count == 1)
    let entry = config.targetFiles[0]
    #expect(entry.options.interval == .seconds(2))
    #expect(entry.options.timeout == .milliseconds(500))
    #expect(entry.options.labels == [Label("source", "cmdb")])
    #expect(entry.refreshInterval == .seconds(300))
    let resolved = ConfigLoader.resolvingPaths(in: config, relativeTo: "/etc/netprobe/netprobe.yml")
    #expect(resolved.targetFiles[0].files == ["/etc/netprobe/targets/*.json"])
    #expect(
      errorLines("target_files:\n  - files: [t.txt]\n    refresh_intervall: 1m\n    name_label: 9a\n") == [
        "test.yml:2:13: 't.txt' is not a target file path: expected a path ending in .json, .yml or .yaml, with at most one '*' in its last component (as in Prometheus' file_sd_configs)",
        "test.yml:3:5: unknown key 'refresh_intervall' in target_files[0] (did you mean 'refresh_interval'?)",
        "test.yml:4:17: invalid label name '9a': expected [a-zA-Z_][a-zA-Z0-9_]*",
      ])
    #expect(
      errorLines("target_files:\n  - refresh_interval: 1m\n") == [
        "test.yml:2:5: target_files[0] needs 'files': a list of paths such as /etc/netprobe/targets/*.json"
      ])
  }

  /// The kernel reports a rename into a watched directory (an editor's save, a ConfigMap
  /// swap) and a file written and closed; a file's own inode is not what is watched.
  @Test func inotifySeesRenamesAndWritesInAWatchedDirectory() throws {
    let scratch = try Scratch()
    let inotify = try Inotify()
    let watch = try inotify.addWatch(scratch.directory.path, mask: Inotify.directoryChanges)
    try scratch.write("a.yml", "- targets: [198.18.0.1]\n")
    let events = try inotify.readEvents()
    #expect(events.contains { $0.watch == watch && $0.name == "a.yml" && $0.mask & UInt32(IN_MOVED_TO) != 0 })
    #expect(events.contains { $0.name == ".a.yml.tmp" && $0.mask & UInt32(IN_CLOSE_WRITE) != 0 })
    #expect(try inotify.readEvents().isEmpty, "nothing more queued: the read drains and does not block")
    #expect(throws: SystemError.self) { try inotify.addWatch(scratch.directory.path + "/missing", mask: Inotify.directoryChanges) }
  }

  // MARK: The set of files

  /// A scratch directory with a configuration whose target files are in it.
  struct Scratch {
    let directory: URL
    var config: NetProbeConfig

    init(main: [String] = ["198.18.1.1"], maxTargets: Int = 100_000) throws {
      directory = FileManager.default.temporaryDirectory.appendingPathComponent("netprobe-tf-\(UInt32.random(in: 0...UInt32.max))")
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      config = NetProbeConfig()
      config.targets = main.map { TargetConfig(name: $0, host: $0, options: ProbeOptions(), location: SourceLocation(line: 3, column: 5)) }
      var entry = TargetFilesConfig(
        files: [directory.path + "/*.yml", directory.path + "/*.json"], options: ProbeOptions(),
        location: SourceLocation(line: 5, column: 5))
      entry.maxTargets = maxTargets
      config.targetFiles = [entry]
    }

    func write(_ name: String, _ text: String) throws {
      let temporary = directory.appendingPathComponent(".\(name).tmp")
      try text.write(to: temporary, atomically: false, encoding: .utf8)
      _ = rename(temporary.path, directory.appendingPathComponent(name).path)
    }

    func remove(_ name: String) throws { try FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
  }

  /// Logs kept in memory, to check that a problem is logged once per change.
  final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var all: [String] { lock.withLock { stored } }
    func append(_ line: String) { lock.withLock { stored.append(line) } }
  }

  struct Capture: LogHandler {
    let lines: Lines
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
      if event.level >= .error { lines.append("\(event.message) \(event.metadata?["error"].map { "\($0)" } ?? "")") }
    }
  }

  func names(_ targets: [TargetConfig]) -> [String] { targets.map(\.name) }

  @Test func aBadFileKeepsItsTargetsAndIsCountedOncePerChange() throws {
    let scratch = try Scratch()
    let lines = Lines()
    let set = TargetFileSet(configName: "netprobe.yml", logger: Logger(label: "t") { _ in Capture(lines: lines) })
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.0.2]\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.0.3\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    #expect(lines.all.count == 1)
    #expect(lines.all.first?.contains(scratch.path("a.yml") + ":1:") == true)
    var exposition = Exposition()
    set.collect(into: &exposition)
    let text = String(decoding: exposition.render(), as: UTF8.self)
    #expect(text.contains("netprobe_target_file_errors_total{file=\"\(scratch.path("a.yml"))\"} 1\n"))
    #expect(text.contains("netprobe_target_file_targets{file=\"\(scratch.path("a.yml"))\"} 2\n"))
    // Another bad version is another change: logged and counted again.
    try scratch.write("a.yml", "- targets: [not a host]\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    #expect(lines.all.count == 2)
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.0.3]\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.3"])
  }

  @Test func duplicatesOfTheConfigurationOrAnotherFileAreRefused() throws {
    let scratch = try Scratch()
    let lines = Lines()
    let set = TargetFileSet(configName: "netprobe.yml", logger: Logger(label: "t") { _ in Capture(lines: lines) })
    try scratch.write("a.yml", "- targets: [198.18.0.1]\n")
    try scratch.write("b.json", "[{\"targets\": [\"198.18.0.2\"]}]")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    // a.yml comes first, but b.json had the target first: the file that changed is refused.
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.0.2]\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    #expect(
      lines.all.last?.contains("\(scratch.path("a.yml")):1:25: target '198.18.0.2' is already defined in \(scratch.path("b.json")):1:15")
        == true)
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.1.1]\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    #expect(lines.all.last?.contains("target '198.18.1.1' is already defined in netprobe.yml:3:5") == true)
    // A target moved from one file to another in one change is no duplicate.
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.0.2]\n")
    try scratch.write("b.json", "[{\"targets\": [\"198.18.0.3\"]}]")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2", "198.18.0.3"])
    #expect(lines.all.count == 2)
  }

  @Test func aFileThatDisappearsTakesItsTargets() throws {
    let scratch = try Scratch()
    let set = TargetFileSet(configName: "netprobe.yml", logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
    try scratch.write("a.yml", "- targets: [198.18.0.1]\n")
    try scratch.write("b.yml", "- targets: [198.18.0.2]\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    try scratch.remove("a.yml")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.2"])
    var exposition = Exposition()
    set.collect(into: &exposition)
    #expect(!String(decoding: exposition.render(), as: UTF8.self).contains("a.yml"))
    #expect(set.merged(into: scratch.config).targets.map(\.name) == ["198.18.1.1", "198.18.0.2"])
  }

  @Test func theEntryLimitRefusesTheFileThatWouldPassIt() throws {
    let scratch = try Scratch(maxTargets: 3)
    let lines = Lines()
    let set = TargetFileSet(configName: "netprobe.yml", logger: Logger(label: "t") { _ in Capture(lines: lines) })
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.0.2]\n")
    try scratch.write("b.yml", "- targets: [198.18.0.3, 198.18.0.4]\n")
    #expect(names(set.targets(for: scratch.config)) == ["198.18.0.1", "198.18.0.2"])
    #expect(lines.all.last?.contains("2 targets would make 4 for the target_files entry at 5:5, over its max_targets (3)") == true)
  }

  @Test func theCheckSaysWhatEachFileGives() throws {
    let scratch = try Scratch()
    try scratch.write("a.yml", "- targets: [198.18.0.1, 198.18.0.2]\n")
    try scratch.write("b.json", "[{\"targets\": [\"198.18.0.3\"],}]")
    let check = TargetFileCheck(config: scratch.config, configName: "netprobe.yml")
    #expect(check.text.contains("\(scratch.path("a.yml")): 2 targets"))
    #expect(check.text.contains("\(scratch.path("b.json")): not usable"))
    #expect(check.problems == ["\(scratch.path("b.json")):1:29: trailing comma before '}': JSON allows none"])
  }
}
