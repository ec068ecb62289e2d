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

  /// One line per problem, in file order, then those of the related files.
  public var lines: [String] { diagnostics.map { $0.formatted(file: file) } + related.flatMap(\.lines) }

  public var description: String { lines.joined(separator: "\n") }
}

/// Where a configuration came from, for logs and the landing page.
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
  public static func parse(_ text: String, file: String) -> Result<NetProbeConfig, ConfigErrors> {
    let root: YAMLNode
    do {
      root = try YAMLLite.parse(text)
    } catch {
      return .failure(ConfigErrors([error], file: file))
    }
    switch ConfigSchema.decode(root) {
    case .success(let config):
      return .success(config)
    case .failure(var errors):
      errors.file = file
      return .failure(errors)
    }
  }

  /// Loads from `source`. Relative file paths inside the config (password and TLS files)
  /// are resolved against the config file's directory, as Prometheus does.
  public static func load(_ source: ConfigSource) -> Result<NetProbeConfig, ConfigErrors> {
    switch source {
    case .embedded:
      return parse(EmbeddedConfig.text, file: "<embedded netprobe.yml>")
    case .file(let path):
      let read: String?
      do {
        read = try FileContents.text(path)
      } catch {
        return .failure(ConfigErrors([ConfigDiagnostic(SourceLocation(line: 1, column: 1), "cannot read the file: \(error)")], file: path))
      }
      guard let text = read else {
        return .failure(ConfigErrors([ConfigDiagnostic(SourceLocation(line: 1, column: 1), "the file is not valid UTF-8")], file: path))
      }
      return parse(text, file: path).map { resolvingPaths(in: $0, relativeTo: path) }
    }
  }

  static func resolvingPaths(in config: NetProbeConfig, relativeTo configPath: String) -> NetProbeConfig {
    guard var push = config.push else { return config }
    let directory = URL(fileURLWithPath: configPath).deletingLastPathComponent()
    func resolve(_ path: String?) -> String? {
      guard let path, !path.hasPrefix("/") else { return path }
      return directory.appendingPathComponent(path).path
    }
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
