@preconcurrency import Glibc
import FoundationEssentials

/// Reads the kernel's multicast tables under /proc/net (of the caller's network namespace).
public enum ProcNet {
  /// The membership the kernel reports now; files that are missing (no IPv6) count as empty.
  public static func membership() -> KernelMembership {
    var membership = KernelMembership()
    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    let names = membership.parseIGMP(read("/proc/net/igmp"), littleEndian: UInt32(1).littleEndian == 1)
    membership.parseMCFilter(read("/proc/net/mcfilter"), names: names)
    let names6 = membership.parseIGMP6(read("/proc/net/igmp6"))
    membership.parseMCFilter6(read("/proc/net/mcfilter6"), names: names6)
    return membership
  }
}
