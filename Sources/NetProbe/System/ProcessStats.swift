@preconcurrency import Glibc
import FoundationEssentials

/// The process's own resource use, read from /proc the way the Go client's process
/// collector does, so dashboards built for Go exporters read ours unchanged.
public struct ProcessStats: Sendable, Equatable {
  public var cpuSeconds: Double
  public var residentMemoryBytes: Double
  public var virtualMemoryBytes: Double
  public var openFileDescriptors: Double
  public var maxFileDescriptors: Double
  public var startTimeSeconds: Double

  /// Reads /proc/self/stat, /proc/self/fd, /proc/stat (boot time) and RLIMIT_NOFILE.
  /// Returns nil if /proc is not mounted; the exporter then omits the process metrics.
  public static func current() -> ProcessStats? {
    guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
      let bootTime = bootTimeSeconds,
      let fields = ProcessStats.statFields(stat)
    else { return nil }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    // Field numbers as in proc(5), 1-based: utime 14, stime 15, starttime 22, vsize 23, rss 24.
    func field(_ number: Int) -> Double { Double(fields[number - 3]) ?? 0 }
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    let openFDs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    return ProcessStats(
      cpuSeconds: (field(14) + field(15)) / ticks,
      residentMemoryBytes: field(24) * pageSize,
      virtualMemoryBytes: field(23),
      openFileDescriptors: Double(max(0, openFDs - 1)),  // minus the descriptor that listed them
      maxFileDescriptors: limit.rlim_cur == rlim_t.max ? .infinity : Double(limit.rlim_cur),
      startTimeSeconds: bootTime + field(22) / ticks
    )
  }

  /// The fields after `(comm)`: the command name may itself hold spaces and parentheses, so
  /// split after its last `)`. Index 0 is field 3 (state).
  static func statFields(_ stat: String) -> [Substring]? {
    guard let close = stat.lastIndex(of: ")") else { return nil }
    let rest = stat[stat.index(after: close)...].split(separator: " ")
    return rest.count >= 22 ? rest : nil
  }

  /// `btime` from /proc/stat, read once: it does not change while the system runs.
  private static let bootTimeSeconds: Double? = {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
      return Double(line.dropFirst(6).trimmingWhitespace())
    }
    return nil
  }()
}
