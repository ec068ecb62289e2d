@preconcurrency import Glibc

/// The two clocks of probing, read with clock_gettime(2).
///
/// RTTs subtract a REALTIME send stamp from the kernel's REALTIME receive stamp
/// (SO_TIMESTAMPNS), so both ends use the same clock; schedules and deadlines use
/// MONOTONIC, which never jumps when NTP steps the wall clock.
public enum Clocks {
  /// Nanoseconds since the Unix epoch (CLOCK_REALTIME).
  @inline(__always)
  public static func realtimeNanoseconds() -> Int64 { read(CLOCK_REALTIME) }

  /// Nanoseconds since an arbitrary start (CLOCK_MONOTONIC).
  @inline(__always)
  public static func monotonicNanoseconds() -> Int64 { read(CLOCK_MONOTONIC) }

  @inline(__always)
  private static func read(_ clock: clockid_t) -> Int64 {
    var time = timespec()
    clock_gettime(clock, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
  }
}

extension Duration {
  /// The whole duration in nanoseconds.
  var nanoseconds: Int64 {
    components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
  }

  /// The duration in seconds, as a Double.
  var seconds: Double {
    Double(components.seconds) + Double(components.attoseconds) / 1e18
  }
}
