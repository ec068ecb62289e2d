@preconcurrency import Glibc

/// A socket address (IPv4 or IPv6 plus port) that lends `sockaddr` pointers only inside a
/// closure, the way swift-nio's `SocketAddress.withSockAddr` does.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
  public var ip: IPAddress
  public var port: UInt16

  public init(_ ip: IPAddress, port: UInt16) {
    self.ip = ip
    self.port = port
  }

  /// `127.0.0.1:9427` or `[::1]:9427`: the form `--web.listen-address` takes.
  public var description: String {
    switch ip {
    case .v4: "\(ip):\(port)"
    case .v6: "[\(ip)]:\(port)"
    }
  }

  /// Parses a listen address: `HOST:PORT`, `[V6]:PORT`, or `:PORT` for every address.
  /// `localhost` stands for 127.0.0.1. Names other than that are refused, so the exporter
  /// never blocks on DNS before it can serve.
  public static func parseListen(_ text: String) -> SocketAddress? {
    guard let colon = text.lastIndex(of: ":") else { return nil }
    let portText = text[text.index(after: colon)...]
    guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), let port = UInt16(portText) else {
      return nil
    }
    var host = text[..<colon]
    if host.hasPrefix("[") && host.hasSuffix("]") {
      host = host.dropFirst().dropLast()
      guard let ip = IPAddress(host), ip.family == .ip6 else { return nil }
      return SocketAddress(ip, port: port)
    }
    // `:port` is every address of both families, as Go exporters listen (see HTTPServer).
    if host.isEmpty { return SocketAddress(.v6(IPv6Bytes([UInt8](repeating: 0, count: 16)), zone: nil), port: port) }
    if host == "localhost" { return SocketAddress(.v4(0x7F00_0001), port: port) }
    guard let ip = IPAddress(host), ip.family == .ip4 else { return nil }
    return SocketAddress(ip, port: port)
  }

  var addressFamily: Int32 {
    switch ip {
    case .v4: AF_INET
    case .v6: AF_INET6
    }
  }

  /// Calls `body` with a `sockaddr` pointer and its length, valid only inside the call.
  func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> R) throws(SystemError) -> R {
    switch ip {
    case .v4(let value):
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = port.bigEndian
      address.sin_addr = in_addr(s_addr: value.bigEndian)
      return try withUnsafePointer(to: &address) { pointer throws(SystemError) in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SystemError) in
          try body(sa, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
    case .v6(let bytes, let zone):
      var address = sockaddr_in6()
      address.sin6_family = sa_family_t(AF_INET6)
      address.sin6_port = port.bigEndian
      withUnsafeMutableBytes(of: &address.sin6_addr) { raw in
        for (index, byte) in bytes.array.enumerated() { raw[index] = byte }
      }
      if let zone { address.sin6_scope_id = if_nametoindex(zone) }
      return try withUnsafePointer(to: &address) { pointer throws(SystemError) in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SystemError) in
          try body(sa, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
      }
    }
  }

  /// Reads a `sockaddr_storage` filled by the kernel (accept, recvfrom, getsockname).
  init?(storage: sockaddr_storage) {
    var storage = storage
    switch Int32(storage.ss_family) {
    case AF_INET:
      let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
      self.init(.v4(UInt32(bigEndian: address.sin_addr.s_addr)), port: UInt16(bigEndian: address.sin_port))
    case AF_INET6:
      let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
      let bytes = withUnsafeBytes(of: address.sin6_addr) { Array($0) }
      self.init(.v6(IPv6Bytes(bytes), zone: nil), port: UInt16(bigEndian: address.sin6_port))
    default:
      return nil
    }
  }
}
