public import Logging
@preconcurrency import Glibc
import Synchronization

/// Watches the directories of the `target_files` patterns with inotify on a thread of its
/// own and asks the agent to read the files again when something in them changes, and at
/// every refresh interval in any case.
///
/// Directories, not files: an editor renames a new file over the old one and Kubernetes
/// swaps a ConfigMap volume's `..data` symlink, and a watch on the file would stay on the
/// replaced inode. Any change in a watched directory triggers a read of every file (as in
/// Prometheus: the events of one save vary too much to interpret); files whose bytes did not
/// change cost a hash. Events are gathered for `settle` before the read, so one save that
/// sends five events is read once. It runs on an event loop of its own, whose thread blocks
/// in poll(2), never on the cooperative pool; without inotify (out of instances or watches)
/// the periodic read still works.
public final class TargetFileWatcher: ConfigSubscriber {
  struct Plan: Sendable, Equatable {
    var directories: [String]
    var refresh: Duration
  }

  /// How long events are gathered before the files are read (ns).
  static let settle: Int64 = 100_000_000
  /// How often a directory that could not be watched (it does not exist yet) is tried again (ns).
  static let watchRetry: Int64 = 5_000_000_000

  private let loop: EventLoop<TargetFileWatchEngine>
  private let current = Mutex<Plan?>(nil)

  /// - Parameter refresh: reads the files again and applies them (`Agent.refreshTargetFiles`).
  public init(logger: Logger, refresh: @escaping @Sendable () -> Void) throws(SystemError) {
    var logger = logger
    logger[metadataKey: "engine"] = "target_files"
    let log = logger
    loop = try EventLoop(name: "target-files") { TargetFileWatchEngine(logger: log, refresh: refresh) }
  }

  /// The directory inotify watches for a pattern: everything before its last `/`
  /// (the pattern's `*` may only be in its last component).
  static func directory(of pattern: String) -> String {
    guard let slash = pattern.lastIndex(of: "/") else { return "." }
    return slash == pattern.startIndex ? "/" : String(pattern[..<slash])
  }

  public func apply(_ config: NetProbeConfig) {
    let directories = Array(Set(config.targetFiles.flatMap { $0.files.map(Self.directory(of:)) })).sorted()
    let refresh = config.targetFiles.map(\.refreshInterval).min() ?? .seconds(300)
    let plan = Plan(directories: directories, refresh: refresh)
    let changed = current.withLock { current in
      defer { current = plan }
      return current != plan
    }
    if changed { loop.post(plan, isEmpty: directories.isEmpty) }
  }

  public func stop() { loop.stop() }
}

/// The watcher's logic on its event loop: the inotify descriptor, the directory watches
/// (retried while a directory is missing), the gathering of one save's events into one
/// read, and the periodic read.
private struct TargetFileWatchEngine: LoopEngine {
  typealias Command = TargetFileWatcher.Plan

  enum Timer {
    /// The events gathered since the first one are read now.
    case read
    /// The periodic read of the plan with this number (a newer plan starts its own).
    case refresh(UInt64)
    /// Directories that could not be watched are tried again.
    case retry
  }

  let logger: Logger
  let refresh: @Sendable () -> Void
  let inotify: Inotify?
  var registered = false
  var plan = TargetFileWatcher.Plan(directories: [], refresh: .seconds(300))
  var planNumber: UInt64 = 0
  var watches: [String: Int32] = [:]
  var unwatched = Set<String>()
  /// Directories whose watch failure was logged, so a retry that fails alike stays quiet.
  var reported = Set<String>()
  var readPending = false
  var retryPending = false

  init(logger: Logger, refresh: @escaping @Sendable () -> Void) {
    self.logger = logger
    self.refresh = refresh
    do {
      inotify = try Inotify()
    } catch {
      logger.warning("cannot watch target files for changes; reading them at every refresh_interval only", metadata: ["error": "\(error)"])
      inotify = nil
    }
  }

  static func nanoseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
  }

  mutating func handle(_ commands: [Command], loop: inout LoopRegistrations<Timer>) {
    guard let next = commands.last else { return }
    if let inotify, !registered {
      loop.watch(inotify.fileDescriptor)
      registered = true
    }
    for (directory, descriptor) in watches where !next.directories.contains(directory) {
      inotify?.removeWatch(descriptor)
      watches[directory] = nil
    }
    unwatched = unwatched.filter(next.directories.contains)
    for directory in next.directories where watches[directory] == nil { watch(directory) }
    scheduleRetry(&loop)
    if next.refresh != plan.refresh || planNumber == 0 {
      planNumber += 1
      loop.schedule(.refresh(planNumber), at: Clocks.monotonicNanoseconds() + Self.nanoseconds(next.refresh))
    }
    plan = next
  }

  mutating func fire(_ timer: Timer, now: Int64, loop: inout LoopRegistrations<Timer>) {
    switch timer {
    case .read:
      readPending = false
      refresh()
    case .refresh(let number):
      guard number == planNumber else { return }
      loop.schedule(.refresh(number), at: now + Self.nanoseconds(plan.refresh))
      refresh()
    case .retry:
      retryPending = false
      for directory in unwatched.sorted() {
        watch(directory)
        // A directory that appeared may already hold files.
        if watches[directory] != nil { scheduleRead(&loop) }
      }
      scheduleRetry(&loop)
    }
  }

  mutating func ready(_ descriptor: Int32, events: PollEvents, loop: inout LoopRegistrations<Timer>) {
    guard let inotify else { return }
    do {
      for event in try inotify.readEvents() {
        if event.mask & UInt32(IN_IGNORED) != 0, let directory = watches.first(where: { $0.value == event.watch })?.key {
          // The directory itself went away: watch it again once it is back.
          watches[directory] = nil
          unwatched.insert(directory)
          scheduleRetry(&loop)
        }
        scheduleRead(&loop)
      }
    } catch {
      logger.error("cannot read inotify events", metadata: ["error": "\(error)"])
      scheduleRead(&loop)
    }
  }

  /// Reads the files `settle` after the first event of a burst: one save, one read.
  mutating func scheduleRead(_ loop: inout LoopRegistrations<Timer>) {
    guard !readPending else { return }
    readPending = true
    loop.schedule(.read, at: Clocks.monotonicNanoseconds() + TargetFileWatcher.settle)
  }

  mutating func scheduleRetry(_ loop: inout LoopRegistrations<Timer>) {
    guard !unwatched.isEmpty, !retryPending, inotify != nil else { return }
    retryPending = true
    loop.schedule(.retry, at: Clocks.monotonicNanoseconds() + TargetFileWatcher.watchRetry)
  }

  mutating func watch(_ directory: String) {
    guard let inotify else { return }
    do {
      watches[directory] = try inotify.addWatch(directory, mask: Inotify.directoryChanges)
      unwatched.remove(directory)
      reported.remove(directory)
    } catch {
      unwatched.insert(directory)
      // Said once per directory until it can be watched: it may simply not exist yet.
      if reported.insert(directory).inserted {
        logger.warning("cannot watch a target file directory; retrying", metadata: ["directory": "\(directory)", "error": "\(error)"])
      }
    }
  }
}
