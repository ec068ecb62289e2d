/// One `target_files` entry: files that another tool writes in Prometheus' `file_sd`
/// format, and the probe settings every target found in them gets.
///
/// The targets are not part of the configuration file, so the typed configuration holds
/// only where to find them; `TargetFileSet` reads them and the agent merges them after the
/// configuration's own targets.
public struct TargetFilesConfig: Sendable, Equatable {
  /// Paths as written (relative ones resolved against the configuration file's directory
  /// by the loader); the last path component may hold one `*`, as in Prometheus.
  public var files: [String]
  /// How often the files are read again even when inotify reported nothing: the fallback
  /// for file systems that send no events (NFS, some FUSE mounts) and for watches that
  /// could not be set.
  public var refreshInterval: Duration = .seconds(300)
  /// The group label whose value names a target (its `target` label); nil names a target
  /// by its host.
  public var nameLabel: String?
  /// `defaults` with this entry's own probe settings applied: every target of its files
  /// starts from these, and the file's labels come after the entry's own.
  public var options: ProbeOptions
  /// Targets one file may give; a file with more is refused, so a runaway generator
  /// cannot make the agent probe a /8.
  public var maxTargetsPerFile = 10_000
  /// Targets all files of this entry may give together.
  public var maxTargets = 100_000
  public var location: SourceLocation

  public init(files: [String], options: ProbeOptions, location: SourceLocation) {
    self.files = files
    self.options = options
    self.location = location
  }

  /// Whether `pattern` is a path Prometheus' `file_sd_configs` accepts: at most one `*`,
  /// only in the last path component, and a `.json`, `.yml` or `.yaml` extension (any
  /// case), which says how the file is read.
  public static func isValidPattern(_ pattern: String) -> Bool {
    guard TargetFileFormat(path: pattern) != nil else { return false }
    let stars = pattern.filter { $0 == "*" }.count
    if stars == 0 { return true }
    guard stars == 1, let star = pattern.firstIndex(of: "*") else { return false }
    return !pattern[star...].contains("/")
  }
}

/// How a target file is read, chosen by its extension as Prometheus does.
public enum TargetFileFormat: String, Sendable, Equatable {
  case json
  case yaml

  /// The format of `path` by its extension (`.json`, `.yml`, `.yaml`, any case); nil for
  /// any other.
  public init?(path: String) {
    let name = path.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
    guard let dot = name.lastIndex(of: ".") else { return nil }
    switch name[name.index(after: dot)...].lowercased() {
    case "json": self = .json
    case "yml", "yaml": self = .yaml
    default: return nil
    }
  }
}
