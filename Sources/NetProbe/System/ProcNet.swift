@preconcurrency import Glibc
import FoundationEssentials

/// Reads the kernel's multicast tables under /proc/net (of the caller's network namespace).
public enum ProcNet {
  /// The membership the kernel reports now, from /proc/net/igmp and /proc/net/igmp6; files
  /// that are missing (no IPv6) count as empty. Not mcfilter: why, in `KernelMembership`.
  public static func membership() -> KernelMembership {
    var membership = KernelMembership()
    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    membership.parseIGMP(read("/proc/net/igmp"), littleEndian: UInt32(1).littleEndian == 1)
    membership.parseIGMP6(read("/proc/net/igmp6"))
    return membership
  }
}
