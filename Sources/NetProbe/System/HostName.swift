@preconcurrency import Glibc

/// The host's name from gethostname(2): the default `instance` of pushed metrics. No DNS
/// lookup is made, so it never blocks.
public enum HostName {
  public static func current() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
