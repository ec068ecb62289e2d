@preconcurrency import Glibc

/// Reads a whole file with open(2) and read(2), so a failure is a `SystemError` that names
/// the errno (`open: No such file or directory (ENOENT)`), as an operator wants to see it.
public enum FileContents {
  public static func read(_ path: String) throws(SystemError) -> [UInt8] {
    let fd = try retryingInterrupts("open") { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
      let count = try retryingInterrupts("read") { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
      if count == 0 { return bytes }
      bytes.append(contentsOf: chunk[0..<count])
    }
  }

  /// The file as UTF-8 text; nil when it is not valid UTF-8.
  public static func text(_ path: String) throws(SystemError) -> String? {
    String(validating: try read(path), as: UTF8.self)
  }

  /// An integer sysctl (`net.ipv4.igmp_max_msf`), read from /proc/sys; nil when the kernel
  /// lacks it or it cannot be read (the caller keeps the kernel's documented default).
  public static func sysctl(_ name: String) -> Int? {
    let path = "/proc/sys/" + name.replacing(".", with: "/")
    return (try? text(path)).flatMap { $0 }.flatMap { Int($0.trimmingWhitespace()) }
  }
}
