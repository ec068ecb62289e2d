@preconcurrency import Glibc

/// Writes whole lines to standard error with one write(2) each, so lines from different
/// threads never interleave (a write to a pipe of at most PIPE_BUF bytes is atomic).
public enum StandardError {
  public static func write(_ line: [UInt8]) {
    var offset = 0
    line.withUnsafeBytes { bytes in
      while offset < bytes.count {
        let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
        if written > 0 {
          offset += written
        } else if written < 0 && errno == EINTR {
          continue
        } else {
          return
        }
      }
    }
  }
}
