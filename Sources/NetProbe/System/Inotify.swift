@preconcurrency import Glibc

/// An inotify(7) instance: the kernel's change notifications for watched directories.
///
/// The target file watcher watches directories, not files: an editor saves by writing a
/// new file and renaming it over the old one, and Kubernetes updates a ConfigMap volume by
/// swapping its `..data` symlink; both replace the inode a file watch would sit on, while
/// a directory watch sees the rename. One wrapper per system call, each retrying EINTR and
/// throwing a `SystemError` that names the call.
final class Inotify: Sendable {
  /// One event: the watch it came from, what happened (`IN_*` bits), and the name of the
  /// entry inside the watched directory (empty for the directory itself).
  struct Event: Sendable, Equatable {
    var watch: Int32
    var mask: UInt32
    var name: String
  }

  /// Changes of a directory's entries that can change what a target file holds: created,
  /// deleted, renamed in or out, written and closed. IN_MODIFY is left out on purpose: a
  /// file being written sends it per write, and reading it then would read half a file;
  /// IN_CLOSE_WRITE comes once the writer is done.
  static let directoryChanges = UInt32(
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE
      | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

  private let descriptor: Int32

  /// Wraps `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`: non-blocking, so the loop polls it
  /// with its wake-up descriptor.
  init() throws(SystemError) {
    descriptor = try retryingInterrupts("inotify_init1") { inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }
  }

  /// Wraps `close(2)`.
  deinit { _ = Glibc.close(descriptor) }

  /// The descriptor, for poll sets.
  var fileDescriptor: Int32 { descriptor }

  /// Wraps `inotify_add_watch(2)`; returns the watch descriptor (the same one again when
  /// `path` is watched already).
  func addWatch(_ path: String, mask: UInt32) throws(SystemError) -> Int32 {
    try retryingInterrupts("inotify_add_watch") { inotify_add_watch(descriptor, path, mask) }
  }

  /// Wraps `inotify_rm_watch(2)`. A watch the kernel already dropped (its directory was
  /// deleted) fails with EINVAL, which is not worth reporting.
  func removeWatch(_ watch: Int32) {
    _ = inotify_rm_watch(descriptor, watch)
  }

  /// Wraps `read(2)` on the inotify descriptor: the events queued so far, none when the
  /// queue is empty (EAGAIN). IN_Q_OVERFLOW arrives as an event with watch -1.
  func readEvents() throws(SystemError) -> [Event] {
    // Room for many events at once; one event is at most sizeof(inotify_event) + NAME_MAX + 1.
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    let count = buffer.withUnsafeMutableBytes { bytes in
      Result { () throws(SystemError) in try retryingInterrupts("read") { Glibc.read(descriptor, bytes.baseAddress, bytes.count) } }
    }
    switch count {
    case .success(let count): return Self.decode(buffer[0..<count])
    case .failure(let error) where error.errno == EAGAIN: return []
    case .failure(let error): throw error
    }
  }

  /// Splits what one read(2) returned into events. The kernel never splits an event
  /// across reads; a short tail is dropped rather than trusted.
  static func decode(_ bytes: ArraySlice<UInt8>) -> [Event] {
    let header = MemoryLayout<inotify_event>.size
    var events: [Event] = []
    var offset = bytes.startIndex
    while bytes.endIndex - offset >= header {
      func word<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { raw in
          for i in 0..<MemoryLayout<T>.size { raw[i] = bytes[offset + at + i] }
        }
        return value
      }
      let watch = word(0, Int32.self)
      let mask = word(4, UInt32.self)
      let length = Int(word(12, UInt32.self))
      guard bytes.endIndex - offset - header >= length else { break }
      let nameBytes = bytes[(offset + header)..<(offset + header + length)].prefix { $0 != 0 }
      events.append(Event(watch: watch, mask: mask, name: String(decoding: nameBytes, as: UTF8.self)))
      offset += header + length
    }
    return events
  }
}

/// Expands a path pattern with glob(3), as Prometheus expands `file_sd_configs` files.
enum FileGlob {
  /// Wraps `glob(3)`: the paths matching `pattern`, sorted; none when nothing matches or
  /// the directory cannot be read (the caller treats both as "no file here now").
  static func paths(matching pattern: String) -> [String] {
    var result = glob_t()
    defer { globfree(&result) }
    guard glob(pattern, 0, nil, &result) == 0 else { return [] }
    var paths: [String] = []
    for index in 0..<Int(result.gl_pathc) {
      if let path = result.gl_pathv[index] { paths.append(String(cString: path)) }
    }
    return paths.sorted()
  }
}
