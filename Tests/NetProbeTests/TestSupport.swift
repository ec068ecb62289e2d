import Foundation
@testable import NetProbe

/// The package's root directory, found from this file's path.
let packageRoot: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Parses configuration text, returning the config or the formatted error lines.
func loadConfig(_ text: String, file: String = "test.yml") -> Result<NetProbeConfig, ConfigErrors> {
  ConfigLoader.parse(text, file: file)
}

/// The error lines of a configuration that must fail, or a single line saying it passed.
func errorLines(_ text: String, file: String = "test.yml") -> [String] {
  switch loadConfig(text, file: file) {
  case .success: ["<valid>"]
  case .failure(let errors): errors.lines
  }
}

/// Runs a command and returns its exit status and standard output.
func run(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> (status: Int32, output: Data) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  let output = Pipe()
  process.standardOutput = output
  let stdin = Pipe()
  if input != nil { process.standardInput = stdin }
  try process.run()
  if let input {
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
  }
  let data = output.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (process.terminationStatus, data)
}

extension HTTPResponse {
  /// The whole body: the parts, or everything a streamed body gives (which it consumes).
  var allBytes: [UInt8] {
    guard let stream = bodyStream else { return body }
    var bytes: [UInt8] = []
    while let piece = stream.next() { bytes += piece }
    return bytes
  }
}
