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

  /// `errno` as a named value.
  public var code: Errno { Errno(rawValue: errno) }

  public init(_ call: String, errno: Int32) {
    self.call = call
    self.errno = errno
  }

  public var description: String {
    "\(call): \(String(cString: strerror(errno))) (\(Errno.name(errno)))"
  }
}

/// An errno value with a name, as swift-system's `Errno`: code compares `error.code ==
/// .accessDenied` instead of bare numbers, and metric labels read `errno="ENETUNREACH"`.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: Int32

  public init(rawValue: Int32) { self.rawValue = rawValue }

  /// The corresponding C error is `EPERM`.
  public static let notPermitted = Errno(rawValue: EPERM)
  /// The corresponding C error is `ENOENT`.
  public static let noSuchFile = Errno(rawValue: ENOENT)
  /// The corresponding C error is `EINTR`.
  public static let interrupted = Errno(rawValue: EINTR)
  /// The corresponding C error is `EIO`.
  public static let ioError = Errno(rawValue: EIO)
  /// The corresponding C error is `EBADF`.
  public static let badDescriptor = Errno(rawValue: EBADF)
  /// The corresponding C error is `EAGAIN`.
  public static let wouldBlock = Errno(rawValue: EAGAIN)
  /// The corresponding C error is `ENOMEM`.
  public static let noMemory = Errno(rawValue: ENOMEM)
  /// The corresponding C error is `EACCES`.
  public static let accessDenied = Errno(rawValue: EACCES)
  /// The corresponding C error is `EFAULT`.
  public static let badAddress = Errno(rawValue: EFAULT)
  /// The corresponding C error is `EBUSY`.
  public static let busy = Errno(rawValue: EBUSY)
  /// The corresponding C error is `EEXIST`.
  public static let exists = Errno(rawValue: EEXIST)
  /// The corresponding C error is `ENODEV`.
  public static let noSuchDevice = Errno(rawValue: ENODEV)
  /// The corresponding C error is `ENXIO`.
  public static let noSuchDeviceOrAddress = Errno(rawValue: ENXIO)
  /// The corresponding C error is `EINVAL`.
  public static let invalidArgument = Errno(rawValue: EINVAL)
  /// The corresponding C error is `ENFILE`.
  public static let tooManyOpenFilesInSystem = Errno(rawValue: ENFILE)
  /// The corresponding C error is `EMFILE`.
  public static let tooManyOpenFiles = Errno(rawValue: EMFILE)
  /// The corresponding C error is `ENOSPC`.
  public static let noSpace = Errno(rawValue: ENOSPC)
  /// The corresponding C error is `EPIPE`.
  public static let brokenPipe = Errno(rawValue: EPIPE)
  /// The corresponding C error is `EMSGSIZE`.
  public static let messageTooLong = Errno(rawValue: EMSGSIZE)
  /// The corresponding C error is `EPROTONOSUPPORT`.
  public static let protocolNotSupported = Errno(rawValue: EPROTONOSUPPORT)
  /// The corresponding C error is `EAFNOSUPPORT`.
  public static let addressFamilyNotSupported = Errno(rawValue: EAFNOSUPPORT)
  /// The corresponding C error is `EADDRINUSE`.
  public static let addressInUse = Errno(rawValue: EADDRINUSE)
  /// The corresponding C error is `EADDRNOTAVAIL`.
  public static let addressNotAvailable = Errno(rawValue: EADDRNOTAVAIL)
  /// The corresponding C error is `ENETDOWN`.
  public static let networkDown = Errno(rawValue: ENETDOWN)
  /// The corresponding C error is `ENETUNREACH`.
  public static let networkUnreachable = Errno(rawValue: ENETUNREACH)
  /// The corresponding C error is `ECONNABORTED`.
  public static let connectionAborted = Errno(rawValue: ECONNABORTED)
  /// The corresponding C error is `ECONNRESET`.
  public static let connectionReset = Errno(rawValue: ECONNRESET)
  /// The corresponding C error is `ENOBUFS`.
  public static let noBufferSpace = Errno(rawValue: ENOBUFS)
  /// The corresponding C error is `ENOTCONN`.
  public static let notConnected = Errno(rawValue: ENOTCONN)
  /// The corresponding C error is `ETIMEDOUT`.
  public static let timedOut = Errno(rawValue: ETIMEDOUT)
  /// The corresponding C error is `ECONNREFUSED`.
  public static let connectionRefused = Errno(rawValue: ECONNREFUSED)
  /// The corresponding C error is `EHOSTDOWN`.
  public static let hostDown = Errno(rawValue: EHOSTDOWN)
  /// The corresponding C error is `EHOSTUNREACH`.
  public static let hostUnreachable = Errno(rawValue: EHOSTUNREACH)
  /// The corresponding C error is `ENOPROTOOPT`.
  public static let protocolNotAvailable = Errno(rawValue: ENOPROTOOPT)
  /// The corresponding C error is `EOPNOTSUPP`.
  public static let notSupported = Errno(rawValue: EOPNOTSUPP)
  /// The corresponding C error is `ENOTSOCK`.
  public static let notSocket = Errno(rawValue: ENOTSOCK)

  /// The symbolic name (`EACCES`), or `E<number>` for one this table lacks.
  public var name: String { Self.names[rawValue] ?? "E\(rawValue)" }

  public var description: String { name }

  /// The symbolic name of a raw errno.
  public static func name(_ code: Int32) -> String { Errno(rawValue: code).name }

  private static let names: [Int32: String] = [
    EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF", EAGAIN: "EAGAIN",
    ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST", ENODEV: "ENODEV",
    ENXIO: "ENXIO", EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE", ENOSPC: "ENOSPC", EPIPE: "EPIPE",
    EMSGSIZE: "EMSGSIZE", EPROTONOSUPPORT: "EPROTONOSUPPORT", EAFNOSUPPORT: "EAFNOSUPPORT",
    EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENETDOWN: "ENETDOWN", ENETUNREACH: "ENETUNREACH",
    ECONNABORTED: "ECONNABORTED", ECONNRESET: "ECONNRESET", ENOBUFS: "ENOBUFS", ENOTCONN: "ENOTCONN",
    ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED", EHOSTDOWN: "EHOSTDOWN", EHOSTUNREACH: "EHOSTUNREACH",
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
