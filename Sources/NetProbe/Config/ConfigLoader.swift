@preconcurrency import Glibc
import FoundationEssentials

/// Every problem found in one configuration file, ready to print as `FILE:LINE:COL: …`.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
  public var diagnostics: [ConfigDiagnostic]
  /// The file name used in messages; set by the loader.
  public var file: String
  /// The problems of other files read with this one (the web configuration), after it.
  public var related: [ConfigErrors] = []

  public init(_ diagnostics: [ConfigDiagnostic], file: String = "<config>") {
    self.diagnostics = diagnostics
    self.file = file
  }

  /// Problems printed before the rest is summed up in one line.
  public static let printedLimit = 50

  /// One line per problem, in file order, then those of the related files: the first
  /// `printedLimit` of each file, then "… and N more errors". A generated file with 200,000
  /// duplicate names gets a screenful that shows the pattern, not 200,000 lines in the
  /// terminal or the log.
  public var lines: [String] {
    var lines = diagnostics.prefix(Self.printedLimit).map { $0.formatted(file: file) }
    if diagnostics.count > Self.printedLimit {
      lines.append("\(file): … and \(diagnostics.count - Self.printedLimit) more errors (\(diagnostics.count) in all)")
    }
    return lines + related.flatMap(\.lines)
  }

  public var description: String { lines.joined(separator: "\n") }
}

/// Where a configuration came from, for logs and the status page.
public enum ConfigSource: Sendable, Equatable, CustomStringConvertible {
  /// The built-in default (loopback targets only).
  case embedded
  case file(String)

  public var description: String {
    switch self {
    case .embedded: "embedded default configuration"
    case .file(let path): path
    }
  }
}

/// Reads a configuration: the file (or the embedded default) → YAML-lite → schema.
public enum ConfigLoader {
  /// Parses configuration text; `file` names it in error messages.
  public static func parse(_ text: String, file: String, files: NamedFileCheck? = nil) -> Result<NetProbeConfig, ConfigErrors> {
    tree(text, file: file).flatMap { decode($0, file: file, files: files) }
  }

  static func tree(_ text: String, file: String) -> Result<YAMLNode, ConfigErrors> {
    YAMLLite.parseReportingAll(text).mapError { errors in
      var errors = errors
      errors.file = file
      return errors
    }
  }

  static func decode(_ root: YAMLNode, file: String, files: NamedFileCheck?) -> Result<NetProbeConfig, ConfigErrors> {
    switch ConfigSchema.decode(root, files: files) {
    case .success(let config):
      return .success(config)
    case .failure(var errors):
      errors.file = file
      return .failure(errors)
    }
  }

  /// The file's tree. Its bytes and text are gone when this returns, before the schema
  /// builds the typed configuration: the peak holds the tree and the configuration, not
  /// also the 16 MiB of text.
  static func readTree(_ path: String) -> Result<YAMLNode, ConfigErrors> {
    let text: String
    do {
      let bytes = try FileContents.readRegularFile(path)
      guard let valid = String(validating: bytes, as: UTF8.self) else {
        return .failure(ConfigErrors([ConfigDiagnostic(SourceLocation(line: 1, column: 1), "the file is not valid UTF-8")], file: path))
      }
      text = valid
    } catch {
      return .failure(ConfigErrors([ConfigDiagnostic(SourceLocation(line: 1, column: 1), "cannot read the file: \(error)")], file: path))
    }
    return tree(text, file: path)
  }

  /// Loads from `source`. Relative file paths inside the config (password and TLS files)
  /// are resolved against the config file's directory, as Prometheus does.
  public static func load(_ source: ConfigSource) -> Result<NetProbeConfig, ConfigErrors> {
    switch source {
    case .embedded:
      return parse(EmbeddedConfig.text, file: "<embedded netprobe.yml>")
    case .file(let path):
      let root: YAMLNode
      switch readTree(path) {
      case .success(let tree): root = tree
      case .failure(let errors): return .failure(errors)
      }
      let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
      let files = NamedFileCheck { named in
        refusal(of: named.hasPrefix("/") ? named : directory.appendingPathComponent(named).path)
      }
      return decode(root, file: path, files: files).map { resolvingPaths(in: $0, relativeTo: path) }
    }
  }

  /// Why a file the configuration names cannot be used: not a regular file, or over the
  /// size limit. A file that is missing or unreadable here is not refused (the file may be
  /// checked on one host and run on another); `unreadableFiles` warns about those.
  static func refusal(of path: String) -> String? {
    do {
      try FileContents.checkRegularFile(path)
      return nil
    } catch {
      if case .system = error { return nil }
      return "cannot use \(path): \(error)"
    }
  }

  static func resolvingPaths(in config: NetProbeConfig, relativeTo configPath: String) -> NetProbeConfig {
    let directory = URL(fileURLWithPath: configPath).deletingLastPathComponent()
    func resolve(_ path: String?) -> String? {
      guard let path, !path.hasPrefix("/") else { return path }
      return directory.appendingPathComponent(path).path
    }
    var config = config
    for index in config.targetFiles.indices {
      config.targetFiles[index].files = config.targetFiles[index].files.map { resolve($0) ?? $0 }
    }
    guard var push = config.push else { return config }
    if let auth = push.basicAuth { push.basicAuth?.passwordFile = resolve(auth.passwordFile) ?? auth.passwordFile }
    push.tls.caFile = resolve(push.tls.caFile)
    push.tls.certFile = resolve(push.tls.certFile)
    push.tls.keyFile = resolve(push.tls.keyFile)
    var copy = config
    copy.push = push
    return copy
  }

  /// Files the config refers to that cannot be read here. Not errors for the config
  /// itself (a file may be checked on one host and run on another), but worth a warning.
  public static func unreadableFiles(in config: NetProbeConfig) -> [String] {
    guard let push = config.push else { return [] }
    let files = [push.basicAuth?.passwordFile, push.tls.caFile, push.tls.certFile, push.tls.keyFile].compactMap { $0 }
    return files.filter { !FileManager.default.isReadableFile(atPath: $0) }
  }
}
