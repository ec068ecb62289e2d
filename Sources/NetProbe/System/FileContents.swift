@preconcurrency import Glibc

/// Reads whole files with open(2) and read(2), so a failure is a `SystemError` that names
/// the errno (`open: No such file or directory (ENOENT)`), as an operator wants to see it.
public enum FileContents {
  /// The largest file an operator names that the exporter reads: the configuration, a
  /// password file, the TLS files handed to libcurl. 16 MiB is hundreds of thousands of
  /// targets, yet bounds what a mistyped path (`/dev/zero`, a log file) can cost: read and
  /// parsed, such a file stays under 200 MiB of memory.
  public static let operatorFileLimit = 16 << 20

  /// Reads a file the kernel generates (/proc, /sys): those report a size of 0, so they are
  /// read to their end without the checks of `readRegularFile`. Not for operator paths.
  public static func read(_ path: String) throws(SystemError) -> [UInt8] {
    let file = try OpenFile(path, flags: O_RDONLY)
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
      let count = try file.read(into: &chunk, count: chunk.count)
      if count == 0 { return bytes }
      bytes.append(contentsOf: chunk[0..<count])
    }
  }

  /// Reads a file an operator named, refusing anything but a regular file of at most
  /// `limit` bytes before reading a byte of it.
  ///
  /// The file is opened with O_NONBLOCK, so a FIFO with no writer cannot block the open,
  /// and fstat(2) on the open descriptor (not stat on the path, which could be swapped in
  /// between) decides: a FIFO, a device such as `/dev/zero`, a socket or a directory is
  /// refused, as is a size over `limit`. At most `limit + 1` bytes are read, so a file that
  /// grows after the check still cannot make the exporter read more than that.
  public static func readRegularFile(_ path: String, limit: Int = operatorFileLimit) throws(FileReadError) -> [UInt8] {
    let (file, status) = try openRegularFile(path, limit: limit)
    var bytes = [UInt8](repeating: 0, count: Int(status.size) + 1)
    var filled = 0
    while true {
      if filled == bytes.count {
        guard bytes.count <= limit else { throw .tooLarge(bytes: Int64(filled), limit: limit) }
        bytes.append(contentsOf: repeatElement(0, count: min(limit + 1, max(4096, bytes.count * 2)) - bytes.count))
      }
      let result = bytes.withUnsafeMutableBytes { buffer in
        Result { () throws(SystemError) in try file.read(into: buffer.baseAddress! + filled, count: buffer.count - filled) }
      }
      let count: Int
      switch result {
      case .success(let read): count = read
      case .failure(let error): throw .system(error)
      }
      if count == 0 { break }
      filled += count
    }
    bytes.removeSubrange(filled...)
    return bytes
  }

  /// Checks, without reading it, that `path` is a regular file of at most `limit` bytes:
  /// for files another library opens itself (libcurl and the TLS files), which would
  /// block on a FIFO or read a device for ever.
  public static func checkRegularFile(_ path: String, limit: Int = operatorFileLimit) throws(FileReadError) {
    _ = try openRegularFile(path, limit: limit)
  }

  /// Opens `path` with O_NONBLOCK and accepts it only when fstat(2) on the descriptor says
  /// it is a regular file of at most `limit` bytes.
  private static func openRegularFile(_ path: String, limit: Int) throws(FileReadError) -> (OpenFile, FileStatus) {
    let file: OpenFile
    let status: FileStatus
    do {
      file = try OpenFile(path, flags: O_RDONLY | O_NONBLOCK)
      status = try file.status()
    } catch {
      throw .system(error)
    }
    guard status.kind == .regular else { throw .notRegularFile(status.kind) }
    guard status.size <= Int64(limit) else { throw .tooLarge(bytes: status.size, limit: limit) }
    return (file, status)
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

/// Why a file an operator named was refused: the system said no, it is not a regular file,
/// or it is too large. The description completes "cannot read FILE: …".
public enum FileReadError: Error, Sendable, Equatable, CustomStringConvertible {
  case system(SystemError)
  case notRegularFile(FileStatus.Kind)
  case tooLarge(bytes: Int64, limit: Int)

  public var description: String {
    switch self {
    case .system(let error):
      return "\(error)"
    case .notRegularFile(let kind):
      return "it is \(kind.description), not a regular file"
    case .tooLarge(let bytes, let limit):
      return "it is \(bytes) bytes, over the limit of \(limit) bytes (\(limit >> 20) MiB) for files the exporter reads"
    }
  }
}

/// What fstat(2) says about an open file, as far as the exporter cares.
public struct FileStatus: Sendable, Equatable {
  public enum Kind: Sendable, Equatable, CustomStringConvertible {
    case regular
    case directory
    case fifo
    case characterDevice
    case blockDevice
    case socket
    case symbolicLink
    case unknown(UInt32)

    init(mode: mode_t) {
      switch UInt32(mode) & UInt32(S_IFMT) {
      case UInt32(S_IFREG): self = .regular
      case UInt32(S_IFDIR): self = .directory
      case UInt32(S_IFIFO): self = .fifo
      case UInt32(S_IFCHR): self = .characterDevice
      case UInt32(S_IFBLK): self = .blockDevice
      case UInt32(S_IFSOCK): self = .socket
      case UInt32(S_IFLNK): self = .symbolicLink
      case let other: self = .unknown(other)
      }
    }

    /// A noun phrase for messages: "a FIFO (named pipe)".
    public var description: String {
      switch self {
      case .regular: "a regular file"
      case .directory: "a directory"
      case .fifo: "a FIFO (named pipe)"
      case .characterDevice: "a character device"
      case .blockDevice: "a block device"
      case .socket: "a socket"
      case .symbolicLink: "a symbolic link"
      case .unknown(let mode): "a file of unknown type (mode \(String(mode, radix: 8)))"
      }
    }
  }

  public var kind: Kind
  /// Bytes, as st_size reports them (0 for devices and FIFOs).
  public var size: Int64
}

/// A file descriptor opened with open(2), owned: closed on deinit. The file-side sibling
/// of `Socket`, so the calls on files also live in `System/` with a typed errno.
final class OpenFile {
  private let descriptor: Int32

  /// Wraps `open(2)`; always close-on-exec.
  init(_ path: String, flags: Int32) throws(SystemError) {
    descriptor = try retryingInterrupts("open") { Glibc.open(path, flags | O_CLOEXEC) }
  }

  /// Wraps `close(2)`; EINTR is not retried, as Linux has already freed the descriptor.
  deinit { _ = Glibc.close(descriptor) }

  /// Wraps `fstat(2)`.
  func status() throws(SystemError) -> FileStatus {
    var info = stat()
    _ = try retryingInterrupts("fstat") { fstat(descriptor, &info) }
    return FileStatus(kind: FileStatus.Kind(mode: info.st_mode), size: Int64(info.st_size))
  }

  /// Wraps `read(2)` into raw memory; returns the bytes read, 0 at the end of the file.
  func read(into buffer: UnsafeMutableRawPointer, count: Int) throws(SystemError) -> Int {
    try retryingInterrupts("read") { Glibc.read(descriptor, buffer, count) }
  }

  /// Wraps `read(2)` into the start of `buffer`.
  func read(into buffer: inout [UInt8], count: Int) throws(SystemError) -> Int {
    let wanted = min(count, buffer.count)
    let result = buffer.withUnsafeMutableBytes { bytes in
      Result { () throws(SystemError) in try read(into: bytes.baseAddress!, count: wanted) }
    }
    return try result.get()
  }
}
