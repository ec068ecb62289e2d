@preconcurrency import Glibc

/// DNS resolution with getaddrinfo(3). It blocks, so callers run it on a thread of their own.
public enum AddressResolver {
  /// GNU extensions of <netdb.h> that Swift's Glibc module does not import.
  private static let eaiAddressFamily: Int32 = -9
  private static let eaiNoData: Int32 = -5

  /// A failed lookup, with getaddrinfo's own message (`Name or service not known`).
  public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var description: String { message }
  }

  /// Every address of `name` for `family` (nil: both), in the order the system prefers
  /// (RFC 6724, /etc/gai.conf), duplicates removed.
  public static func resolve(_ name: String, family: IPAddress.Family?) -> Result<[IPAddress], Failure> {
    var hints = addrinfo()
    hints.ai_family =
      switch family {
      case .ip4: AF_INET
      case .ip6: AF_INET6
      case nil: AF_UNSPEC
      }
    hints.ai_socktype = Int32(SOCK_RAW.rawValue)
    hints.ai_flags = AI_ADDRCONFIG
    var list: UnsafeMutablePointer<addrinfo>?
    var code = getaddrinfo(name, nil, &hints, &list)
    if code == EAI_NONAME || code == EAI_FAMILY || code == eaiAddressFamily {
      // AI_ADDRCONFIG hides every address when the host has no configured address of a
      // family (a namespace with loopback only): try once more without it.
      hints.ai_flags = 0
      code = getaddrinfo(name, nil, &hints, &list)
    }
    guard code == 0 else {
      let message = code == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(code))
      return .failure(Failure(code: code, message: message))
    }
    defer { freeaddrinfo(list) }
    var addresses: [IPAddress] = []
    var cursor = list
    while let entry = cursor {
      if let sockaddr = entry.pointee.ai_addr {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
          raw.copyMemory(from: UnsafeRawBufferPointer(start: sockaddr, count: Int(entry.pointee.ai_addrlen)))
        }
        if let address = SocketAddress(storage: storage)?.ip, !addresses.contains(address) { addresses.append(address) }
      }
      cursor = entry.pointee.ai_next
    }
    if addresses.isEmpty { return .failure(Failure(code: eaiNoData, message: "no address of the requested family")) }
    return .success(addresses)
  }
}
