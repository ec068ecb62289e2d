import Foundation
import Testing
@testable import NetProbe

/// Issue 18's input half: what the exporter reads is bounded (regular files up to 16 MiB),
/// and what it prints about a bad file stays readable (values cut, at most 50 errors,
/// several syntax errors per run).
@Suite struct ConfigInputLimitsTests {
  /// A fresh directory for one test, removed by the caller's `defer`.
  func scratchDirectory() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("netprobe-limits-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
  }

  func loadErrors(_ path: String) -> [String] {
    switch ConfigLoader.load(.file(path)) {
    case .success: ["<valid>"]
    case .failure(let errors): errors.lines
    }
  }

  @Test func aFIFOIsRefusedWithoutBlocking() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let fifo = directory.appendingPathComponent("netprobe.yml").path
    #expect(mkfifo(fifo, 0o600) == 0)
    // No writer ever opens it: a blocking open or read would hang the test here.
    let started = Date()
    let lines = loadErrors(fifo)
    #expect(Date().timeIntervalSince(started) < 1)
    #expect(lines == ["\(fifo):1:1: cannot read the file: it is a FIFO (named pipe), not a regular file"])
  }

  @Test func aDeviceIsRefusedBeforeAByteIsRead() {
    #expect(loadErrors("/dev/zero") == ["/dev/zero:1:1: cannot read the file: it is a character device, not a regular file"])
    #expect(throws: FileReadError.notRegularFile(.characterDevice)) { try FileContents.readRegularFile("/dev/urandom") }
  }

  @Test func aDirectoryIsRefused() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    #expect(loadErrors(directory.path) == ["\(directory.path):1:1: cannot read the file: it is a directory, not a regular file"])
  }

  @Test func aFileOverTheLimitIsRefusedAndOneAtTheLimitIsRead() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("big.yml")
    try Data(repeating: 0x23, count: 100).write(to: file)
    #expect(try FileContents.readRegularFile(file.path, limit: 100).count == 100)
    #expect(throws: FileReadError.tooLarge(bytes: 100, limit: 99)) { try FileContents.readRegularFile(file.path, limit: 99) }
    // The documented cap, through the loader: one byte over 16 MiB.
    let handle = try FileHandle(forWritingTo: file)
    try handle.truncate(atOffset: UInt64(FileContents.operatorFileLimit + 1))
    try handle.close()
    let lines = loadErrors(file.path)
    #expect(
      lines == [
        "\(file.path):1:1: cannot read the file: it is 16777217 bytes, over the limit of 16777216 bytes (16 MiB) for files the exporter reads"
      ])
  }

  @Test func aNamedFileThatIsAFIFOIsAnErrorAtItsLine() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    #expect(mkfifo(directory.appendingPathComponent("secret").path, 0o600) == 0)
    let file = directory.appendingPathComponent("netprobe.yml")
    try "push:\n  url: http://127.0.0.1:9091\n  basic_auth:\n    username: u\n    password_file: secret\n  tls:\n    ca_file: /dev/zero\n"
      .write(to: file, atomically: true, encoding: .utf8)
    let secret = directory.appendingPathComponent("secret").path
    #expect(
      loadErrors(file.path) == [
        "\(file.path):5:20: cannot use \(secret): it is a FIFO (named pipe), not a regular file",
        "\(file.path):7:14: cannot use /dev/zero: it is a character device, not a regular file",
      ])
    // At push time too: the password is not read from a FIFO.
    #expect(throws: FileReadError.notRegularFile(.fifo)) { try PushTarget.password(fromFile: secret) }
  }

  @Test func longValuesAreCutWithTheirLength() {
    let value = String(repeating: "x", count: 10_000_000)
    let lines = errorLines("targets:\n  - host: \"\(value)\"\n")
    #expect(lines.count == 1)
    #expect(
      lines[0] == "test.yml:2:11: '\(String(repeating: "x", count: 80))… (10000000 bytes)' is neither an IP address nor a valid DNS name")
    // A long value where no suggestion can be close is not compared letter by letter
    // (the table would take gigabytes).
    let socket = errorLines("defaults:\n  socket: \(String(repeating: "r", count: 1_000_000))\n")
    #expect(socket.count == 1 && socket[0].hasSuffix("… (1000000 bytes)'"))
    #expect(ConfigValues.shown("a\u{1}b") == "a\\u{01}b")
    #expect(ConfigDiagnostic(SourceLocation(line: 1, column: 1), String(repeating: "m", count: 5000)).message.utf8.count < 500)
  }

  @Test func atMostFiftyErrorsArePrintedThenHowManyMore() {
    let text = "targets:\n" + String(repeating: "  - {name: same, host: 198.18.0.1}\n", count: 200)
    guard case .failure(let errors) = loadConfig(text) else {
      Issue.record("duplicates were accepted")
      return
    }
    #expect(errors.diagnostics.count == 199)
    #expect(errors.lines.count == 51)
    #expect(errors.lines[49] == "test.yml:52:12: duplicate target name 'same' (first at 2:12)")
    #expect(errors.lines[50] == "test.yml: … and 149 more errors (199 in all)")
    #expect(errors.description.split(separator: "\n").count == 51)
  }

  @Test func threeTyposInThreePlacesAreThreeErrors() {
    let text = """
      defaults:
        interval: 1s
        timeout 1s
      targets:
        - host: 198.18.0.1
          labels: [a, b
        - host: 198.18.0.2
          ttl: 64 : 3
      """
    #expect(
      errorLines(text + "\n") == [
        "test.yml:3:13: expected ':' after mapping key",
        "test.yml:6:13: unclosed '[': flow collections must end on the line they start",
        "test.yml:8:13: unexpected ':' in a value; quote the value if it contains ': '",
      ])
    // A second document is the end of this one: nothing after it is read as structure.
    #expect(errorLines("targets: []\n---\nbad key\nbad key\n") == ["test.yml:2:1: multiple documents are not supported"])
  }

  @Test func syntaxErrorsStopAfterTheLimit() {
    let text = "targets:\n" + String(repeating: "  - host 198.18.0.1\n    x: [\n", count: YAMLLite.maximumErrors + 10)
    guard case .failure(let errors) = YAMLLite.parseReportingAll(text) else {
      Issue.record("parsed")
      return
    }
    #expect(errors.diagnostics.count == YAMLLite.maximumErrors + 1)
    #expect(errors.diagnostics.contains { $0.message == "stopped after \(YAMLLite.maximumErrors) syntax errors" })
  }

  @Test func sixteenMebibytesOfTargetsShareTheirOptions() throws {
    // Not the RSS figure (see the README), but the mechanism behind it: targets that
    // override nothing hold one shared copy of the default options.
    let config = try loadConfig("targets:\n  - host: 198.18.0.1\n  - host: 198.18.0.2\n    ttl: 3\n").get()
    var first = config.targets[0].options
    #expect(first == config.defaults)
    #expect(config.targets[1].options.ttl == 3 && config.defaults.ttl == 64)
    first.interval = .seconds(2)
    #expect(first != config.targets[0].options && config.targets[0].options.interval == .seconds(1))
  }
}
