import CNetShims

/// gzip through zlib (the C shim holds the `deflateInit2` macro). Level 1: a 2 MB
/// exposition shrinks about tenfold at a fraction of level 6's CPU.
public enum Gzip {
  public static func compress(_ input: [UInt8], level: Int32 = 1) -> [UInt8]? {
    compress(parts: [input], level: level)
  }

  /// One gzip stream over `parts` in order, as if they were one buffer.
  public static func compress(parts: [[UInt8]], level: Int32 = 1) -> [UInt8]? {
    let capacity = cns_gzip_bound(parts.reduce(0) { $0 + $1.count })
    // Uninitialised: the bound is about the input's size (38 MB at 10,000 targets) but the
    // output a tenth of it; zero-filling would make every page of the bound resident.
    var failed = false
    let output = [UInt8](unsafeUninitializedCapacity: capacity) { destination, count in
      guard let stream = cns_gzip_begin(level) else {
        failed = true
        count = 0
        return
      }
      for part in parts {
        let ok = part.withUnsafeBufferPointer { source in
          cns_gzip_feed(stream, source.baseAddress, source.count, destination.baseAddress, capacity)
        }
        if ok != 0 { failed = true }
      }
      let written = cns_gzip_finish(stream, destination.baseAddress, capacity)  // frees the stream
      if written < 0 { failed = true }
      count = max(0, written)
    }
    return failed ? nil : output
  }
}
