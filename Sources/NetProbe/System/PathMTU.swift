@preconcurrency import Glibc
import CNetShims

/// The kernel's path MTU to an address, as tracepath reads it: connect a throw-away UDP
/// socket (which sends nothing) and ask for IP_MTU / IPV6_MTU.
///
/// Needed because once a router's "fragmentation needed" reached the kernel, later
/// oversized probes with DF fail locally with EMSGSIZE and no router speaks again.
public enum PathMTU {
  public static func cached(to address: IPAddress) -> Int? {
    let family = address.family == .ip4 ? AF_INET : AF_INET6
    guard let socket = try? Socket(family: family, type: Int32(SOCK_DGRAM.rawValue)) else { return nil }
    defer { socket.close() }
    let fd = socket.fileDescriptor
    let connected: Bool =
      (try? SocketAddress(address, port: 9).withSockAddr { (sa, length) throws(SystemError) -> Bool in
        connect(fd, sa, length) == 0
      }) ?? false
    guard connected else { return nil }
    var mtu: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    let result =
      address.family == .ip4
      ? getsockopt(fd, Int32(IPPROTO_IP), IP_MTU, &mtu, &length)
      : getsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MTU, &mtu, &length)
    return result == 0 && mtu > 0 ? Int(mtu) : nil
  }
}
