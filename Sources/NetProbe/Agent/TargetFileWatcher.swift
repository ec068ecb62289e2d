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
/// sends five events is read once. The thread blocks in poll(2), never on the cooperative
/// pool; without inotify (out of instances or watches) the periodic read still works.
public final class TargetFileWatcher: ConfigSubscriber {
  struct Plan: Sendable, Equatable {
    var directories: [String]
    var refresh: Duration
  }

  /// How long events are gathered before the files are read.
  static let settle: Duration = .milliseconds(100)
  /// How often a directory that could not be watched (it does not exist yet) is tried again.
  static let watchRetry: Duration = .seconds(5)

  private let thread: LoopThread<Plan>
  private let current = Mutex<Plan?>(nil)

  /// - Parameter refresh: reads the files again and applies them (`Agent.refreshTargetFiles`).
  public init(logger: Logger, refresh: @escaping @Sendable () -> Void) throws(SystemError) {
    var logger = logger
    logger[metadataKey: "engine"] = "target_files"
    let log = logger
    thread = try LoopThread(name: "target-files") { thread in
      TargetFileWatcher.run(thread, logger: log, refresh: refresh)
    }
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
    if changed { thread.post(plan, isEmpty: directories.isEmpty) }
  }

  public func stop() { thread.stop() }

  private static func run(_ thread: LoopThread<Plan>, logger: Logger, refresh: @Sendable () -> Void) {
    let inotify: Inotify?
    do {
      inotify = try Inotify()
    } catch {
      logger.warning("cannot watch target files for changes; reading them at every refresh_interval only", metadata: ["error": "\(error)"])
      inotify = nil
    }
    var plan = Plan(directories: [], refresh: .seconds(300))
    var watches: [String: Int32] = [:]
    var unwatched = Set<String>()
    var reported = Set<String>()
    let clock = ContinuousClock()
    var nextRefresh = clock.now + plan.refresh
    var nextRetry = clock.now + watchRetry
    var readAt: ContinuousClock.Instant?

    func watch(_ directory: String) {
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

    while !thread.isStopping {
      for next in thread.takeCommands() {
        for (directory, descriptor) in watches where !next.directories.contains(directory) {
          inotify?.removeWatch(descriptor)
          watches[directory] = nil
        }
        unwatched = unwatched.filter(next.directories.contains)
        for directory in next.directories where watches[directory] == nil { watch(directory) }
        if next.refresh != plan.refresh { nextRefresh = clock.now + next.refresh }
        plan = next
      }
      var deadline = readAt.map { min($0, nextRefresh) } ?? nextRefresh
      if !unwatched.isEmpty { deadline = min(deadline, nextRetry) }
      let wait = clock.now.duration(to: deadline)
      let milliseconds = max(0, min(Int64(Int32.max), wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000 + 1))
      var entries = [pollfd(fd: thread.wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0)]
      if let inotify { entries.append(pollfd(fd: inotify.fileDescriptor, events: Int16(POLLIN), revents: 0)) }
      do {
        _ = try Poller.poll(&entries, timeoutMilliseconds: Int32(milliseconds))
      } catch {
        logger.error("poll failed in the target file watcher", metadata: ["error": "\(error)"])
        return
      }
      if entries[0].revents != 0 { thread.wakeup.drain() }
      if let inotify, entries.count > 1, entries[1].revents != 0 {
        do {
          for event in try inotify.readEvents() {
            if event.mask & UInt32(IN_IGNORED) != 0 {
              // The directory itself went away: watch it again once it is back.
              if let directory = watches.first(where: { $0.value == event.watch })?.key {
                watches[directory] = nil
                unwatched.insert(directory)
              }
            }
            if readAt == nil { readAt = clock.now + settle }
          }
        } catch {
          logger.error("cannot read inotify events", metadata: ["error": "\(error)"])
          if readAt == nil { readAt = clock.now + settle }
        }
      }
      let now = clock.now
      if !unwatched.isEmpty, now >= nextRetry {
        nextRetry = now + watchRetry
        for directory in unwatched.sorted() {
          watch(directory)
          // A directory that appeared may already hold files.
          if watches[directory] != nil, readAt == nil { readAt = now }
        }
      }
      if let due = readAt, now >= due {
        readAt = nil
        refresh()
      } else if now >= nextRefresh {
        nextRefresh = now + plan.refresh
        refresh()
      }
    }
  }
}
