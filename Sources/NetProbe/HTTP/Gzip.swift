import CNetShims

/// gzip through zlib (the C shim holds the `deflateInit2` macro). Level 1: a 2 MB
/// exposition shrinks about tenfold at a fraction of level 6's CPU.
public enum Gzip {
  public static func compress(_ input: [UInt8], level: Int32 = 1) -> [UInt8]? {
    let capacity = cns_gzip_bound(input.count)
    var output = [UInt8](repeating: 0, count: capacity)
    let written = input.withUnsafeBufferPointer { source in
      output.withUnsafeMutableBufferPointer { destination in
        cns_gzip(source.baseAddress, source.count, destination.baseAddress, capacity, level)
      }
    }
    guard written >= 0 else { return nil }
    output.removeSubrange(written...)
    return output
  }
}
