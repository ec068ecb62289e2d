public import Logging
@preconcurrency import Glibc
import Synchronization

/// The targets read from `target_files`: every matching file's state, the rules that keep a
/// bad file from doing harm, and the file metrics.
///
/// `targets(for:)` is the one operation: it lists and reads the files of a configuration
/// and returns the targets in force. The agent calls it at start, on every reload and
/// whenever the watcher sees a change, always under its reload lock, so two reads never
/// interleave. A file that reads as before (same bytes, same entry) is not parsed again,
/// so the periodic re-read of 10,000 unchanged targets costs a read and a hash.
///
/// A file whose new content cannot be used — it does not parse, a target is not a host, a
/// target duplicates one of the configuration or of another file, a limit is passed —
/// keeps the targets it gave before, and the problem is logged and counted once per change
/// (not at every re-read). A file that no longer exists gives no targets, as in Prometheus.
public final class TargetFileSet: MetricsCollector, Sendable {
  struct FileState {
    /// The entry (index into `target_files`) the file was found through, and its settings.
    var entry: TargetFilesConfig
    /// Hash of the bytes last read, with `parsed` the result of reading them.
    var fingerprint: Int?
    var parsed: Result<[TargetConfig], ConfigErrors>?
    /// The targets in force.
    var accepted: [TargetConfig] = []
    /// The problems of the last read, to log and count each new set once.
    var problems: [String] = []
    var errors: UInt64 = 0
    var lastRead: Double?
  }

  private let logger: Logger
  private let now: @Sendable () -> Double
  /// The configuration file's name, for "already defined in FILE:LINE:COL".
  private let configName: String
  private let files = Mutex<[String: FileState]>([:])
  /// Paths in the order their targets are merged (entry, then path).
  private let order = Mutex<[String]>([])

  public init(configName: String, logger: Logger, now: @escaping @Sendable () -> Double = Agent.unixTime) {
    self.configName = configName
    self.logger = logger
    self.now = now
  }

  /// The configuration's own targets followed by those of its target files.
  public func merged(into config: NetProbeConfig) -> NetProbeConfig {
    guard !config.targetFiles.isEmpty || !order.withLock({ $0.isEmpty }) else { return config }
    var merged = config
    merged.targets += targets(for: config)
    return merged
  }

  /// Reads the files of `config.targetFiles` as they are now and returns the targets in
  /// force, in entry order, then path order, then file order.
  public func targets(for config: NetProbeConfig) -> [TargetConfig] {
    // The files now, each under the first entry whose pattern matches it.
    var listing: [(path: String, entry: TargetFilesConfig)] = []
    var listed = Set<String>()
    for entry in config.targetFiles {
      for pattern in entry.files {
        for path in FileGlob.paths(matching: pattern) where listed.insert(path).inserted {
          listing.append((path, entry))
        }
      }
    }
    let time = now()
    var previous = files.withLock { $0 }
    // Phase 1: read every file; a file whose bytes are as before is not parsed again.
    var read: [(path: String, entryIndex: Int, state: FileState, changed: Bool, problems: [String])] = []
    for (path, entry) in listing {
      var state = previous.removeValue(forKey: path) ?? FileState(entry: entry)
      if state.entry != entry {
        state.entry = entry
        state.fingerprint = nil
      }
      var changed = false
      var problems: [String] = []
      do {
        let bytes = try FileContents.readRegularFile(path)
        let fingerprint = bytes.hashValue
        if state.fingerprint != fingerprint || state.parsed == nil {
          changed = true
          state.fingerprint = fingerprint
          if let text = String(validating: bytes, as: UTF8.self), let format = TargetFileFormat(path: path) {
            state.parsed = TargetFileReader.read(text, format: format, entry: entry)
          } else {
            state.parsed = .failure(ConfigErrors([ConfigDiagnostic(SourceLocation(line: 1, column: 1), "the file is not valid UTF-8")]))
          }
        }
        if case .failure(var errors) = state.parsed {
          errors.file = path
          problems = errors.lines
        }
      } catch {
        // Gone between the listing and the read: as if it were not listed.
        if case .system(let system) = error, system.errno == ENOENT { continue }
        changed = true
        state.fingerprint = nil
        state.parsed = nil
        problems = ["\(path): cannot read the file: \(error)"]
      }
      read.append((path, config.targetFiles.firstIndex(of: entry) ?? 0, state, changed, problems))
    }
    // Phase 2: the files that did not change keep their claims first, so a file that now
    // lists a target another file already has is the one refused, whatever their order;
    // then the changed ones, in order, so a target moved between two files in one change
    // is no duplicate.
    var taken: [String: String] = [:]
    for target in config.targets { taken[target.name] = "\(configName):\(target.location)" }
    var perEntry: [Int: Int] = [:]
    var logs: [(String, [String])] = []
    let unchangedFirst = read.indices.filter { !read[$0].changed } + read.indices.filter { read[$0].changed }
    for index in unchangedFirst {
      let (path, entryIndex, _, _, readProblems) = read[index]
      var state = read[index].state
      let entry = state.entry
      var problems = readProblems
      let used = perEntry[entryIndex, default: 0]
      var candidate: [TargetConfig]?
      if problems.isEmpty, case .success(let targets) = state.parsed {
        let clashes = targets.compactMap { target in
          taken[target.name].map { "\(path):\(target.location): target '\(ConfigValues.shown(target.name))' is already defined in \($0)" }
        }
        if !clashes.isEmpty {
          problems = Array(clashes.prefix(ConfigErrors.printedLimit))
          if clashes.count > ConfigErrors.printedLimit {
            problems.append("\(path): … and \(clashes.count - ConfigErrors.printedLimit) more duplicates")
          }
        } else if used + targets.count > entry.maxTargets {
          problems = [
            "\(path): \(targets.count) targets would make \(used + targets.count) for the target_files entry at \(entry.location), over its max_targets (\(entry.maxTargets))"
          ]
        } else {
          candidate = targets
        }
      }
      if let targets = candidate {
        state.accepted = targets
        state.lastRead = time
      } else {
        // The previous targets stay, less any that another file or the configuration
        // has claimed since, or that no longer fit the entry's limit.
        var kept = state.accepted.filter { taken[$0.name] == nil }
        if used + kept.count > entry.maxTargets { kept = Array(kept.prefix(max(0, entry.maxTargets - used))) }
        state.accepted = kept
      }
      if problems != state.problems {
        if !problems.isEmpty {
          state.errors += 1
          logs.append((path, problems))
        } else if !state.problems.isEmpty {
          logger.info("target file is good again", metadata: ["file": "\(path)", "targets": "\(state.accepted.count)"])
        }
        state.problems = problems
      }
      for target in state.accepted { taken[target.name] = "\(path):\(target.location)" }
      perEntry[entryIndex] = used + state.accepted.count
      read[index].state = state
    }
    var next: [String: FileState] = [:]
    var result: [TargetConfig] = []
    for file in read {
      result += file.state.accepted
      next[file.path] = file.state
    }
    for path in previous.keys.sorted() {
      logger.info(
        "target file is gone; its targets are removed", metadata: ["file": "\(path)", "targets": "\(previous[path]!.accepted.count)"])
    }
    for (path, problems) in logs {
      for line in problems {
        logger.error("target file not applied; its previous targets stay", metadata: ["file": "\(path)", "error": "\(line)"])
      }
    }
    files.withLock { $0 = next }
    order.withLock { $0 = read.map(\.path) }
    return result
  }

  /// Per file: how many targets it gives now, or its problems. For `--check-config`.
  public func report() -> [(file: String, targets: Int, problems: [String])] {
    let paths = order.withLock { $0 }
    return files.withLock { files in
      paths.compactMap { path in files[path].map { (path, $0.accepted.count, $0.problems) } }
    }
  }

  public func collect(into exposition: inout Exposition) {
    let paths = order.withLock { $0 }
    let snapshot = files.withLock { files in paths.compactMap { path in files[path].map { (path, $0) } } }
    for (path, state) in snapshot {
      let labels = LabelSet([("file", path)])
      exposition.add(Catalogue.targetFileErrors, labels, Double(state.errors))
      exposition.add(Catalogue.targetFileTargets, labels, Double(state.accepted.count))
      if let time = state.lastRead { exposition.add(Catalogue.targetFileLastRead, labels, time) }
    }
  }
}

/// What `--check-config` says about the target files: each file matched now and the
/// targets it gives, or its problems, and the patterns that match no file.
public struct TargetFileCheck {
  public let text: String
  /// Every problem, `FILE:LINE:COL: message`; empty when every file can be used.
  public let problems: [String]

  public init(config: NetProbeConfig, configName: String) {
    guard !config.targetFiles.isEmpty else {
      text = ""
      problems = []
      return
    }
    let set = TargetFileSet(configName: configName, logger: Logger(label: "check", factory: { _ in SwiftLogNoOpLogHandler() }))
    let targets = set.targets(for: config)
    var lines = ["", "Target files: \(targets.count) targets"]
    var problems: [String] = []
    let report = set.report()
    for entry in config.targetFiles {
      for pattern in entry.files where FileGlob.paths(matching: pattern).isEmpty {
        lines.append("  \(pattern): no file matches (yet)")
      }
    }
    for file in report {
      lines.append(
        "  \(file.file): " + (file.problems.isEmpty ? "\(file.targets) targets" : "not usable, \(file.problems.count) problem(s)"))
      problems += file.problems
    }
    text = lines.joined(separator: "\n") + "\n"
    self.problems = problems
  }
}
