@preconcurrency import Glibc

/// The process's open-file limit (RLIMIT_NOFILE), which bounds the HTTP connections the
/// exporter can hold beside its engines' sockets.
public struct OpenFileLimit: Sendable, Equatable {
  /// The limit enforced now; `open`, `socket` and `accept` fail with EMFILE beyond it.
  public var soft: UInt64
  /// The ceiling an unprivileged process may raise `soft` to.
  public var hard: UInt64

  /// Wraps `getrlimit(RLIMIT_NOFILE)`.
  public static func current() throws(SystemError) -> OpenFileLimit {
    var limit = rlimit()
    _ = try retryingInterrupts("getrlimit(RLIMIT_NOFILE)") {
      getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
    return OpenFileLimit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
  }

  /// Wraps `setrlimit(RLIMIT_NOFILE)` to raise the soft limit to the hard one, as Go's
  /// runtime does at start for every Go exporter: the soft default (often 1,024) is there
  /// for programs that use select(2), which this one does not. Returns the limit in force
  /// afterwards; an unchanged limit when it was already raised.
  @discardableResult
  public static func raiseSoftToHard() throws(SystemError) -> OpenFileLimit {
    var limit = try current()
    guard limit.soft < limit.hard else { return limit }
    var raised = rlimit(rlim_cur: rlim_t(limit.hard), rlim_max: rlim_t(limit.hard))
    _ = try retryingInterrupts("setrlimit(RLIMIT_NOFILE)") {
      setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised)
    }
    limit.soft = limit.hard
    return limit
  }

  /// Descriptors open in this process now, counted from /proc/self/fd (nil without /proc).
  /// Wraps `opendir(3)`/`readdir(3)`; the directory's own descriptor is not counted.
  public static func openDescriptors() -> Int? {
    guard let directory = opendir("/proc/self/fd") else { return nil }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { $0.first }
      if name != UInt8(ascii: ".") { count += 1 }
    }
    return max(0, count - 1)
  }
}
