@preconcurrency import Glibc

/// A failed system call: which call, and the errno it left.
///
/// Environment failures (a port in use, a missing privilege) are thrown as this and shown to
/// people; the description names the call and the errno symbol, e.g.
/// `bind: Address already in use (EADDRINUSE)`.
public struct SystemError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The C function that failed, e.g. `"bind"`.
  public var call: String
  public var errno: Int32

  public init(_ call: String, errno: Int32) {
    self.call = call
    self.errno = errno
  }

  public var description: String {
    "\(call): \(String(cString: strerror(errno))) (\(Errno.name(errno)))"
  }
}

/// errno values by name, for metric labels (`errno="ENETUNREACH"`) and messages.
public enum Errno {
  /// The symbolic name of an errno (`EACCES`), or `E<number>` for one this table lacks.
  public static func name(_ code: Int32) -> String {
    names[code] ?? "E\(code)"
  }

  private static let names: [Int32: String] = [
    EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF",
    EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY",
    EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE",
    ENOSPC: "ENOSPC", EPIPE: "EPIPE", EMSGSIZE: "EMSGSIZE", EPROTONOSUPPORT: "EPROTONOSUPPORT",
    EAFNOSUPPORT: "EAFNOSUPPORT", EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL",
    ENETDOWN: "ENETDOWN", ENETUNREACH: "ENETUNREACH", ECONNABORTED: "ECONNABORTED",
    ECONNRESET: "ECONNRESET", ENOBUFS: "ENOBUFS", ENOTCONN: "ENOTCONN", ETIMEDOUT: "ETIMEDOUT",
    ECONNREFUSED: "ECONNREFUSED", EHOSTDOWN: "EHOSTDOWN", EHOSTUNREACH: "EHOSTUNREACH",
    ENOPROTOOPT: "ENOPROTOOPT", EOPNOTSUPP: "EOPNOTSUPP", ENOTSOCK: "ENOTSOCK",
  ]
}

/// Calls `body` until it returns something other than -1 with EINTR.
///
/// Every wrapper in `System/` goes through this, so a signal never surfaces as a spurious
/// failure, and -1 becomes a `SystemError` naming `call`.
@inline(__always)
func retryingInterrupts<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
  while true {
    let result = body()
    if result != -1 { return result }
    let code = Glibc.errno
    if code == EINTR { continue }
    throw SystemError(call, errno: code)
  }
}
