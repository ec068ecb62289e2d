@preconcurrency import Glibc

/// Whether an interface can carry traffic now, from its flags.
public enum LinkState: String, Sendable, Equatable {
  case up
  /// IFF_UP is clear: `ip link set DEV down`.
  case administrativelyDown = "admin down"
  /// Up, but IFF_RUNNING is clear: no carrier (a cable out, a veth whose peer is down).
  case noCarrier = "no carrier"
}

extension NetworkInterface {
  /// getifaddrs(3): the link state of every interface of this network namespace, by name.
  /// Every interface has an AF_PACKET entry, down or not; its flags are the interface's.
  public static func linkStates() throws(SystemError) -> [String: LinkState] {
    var list: UnsafeMutablePointer<ifaddrs>?
    _ = try retryingInterrupts("getifaddrs") { getifaddrs(&list) }
    defer { freeifaddrs(list) }
    var states: [String: LinkState] = [:]
    var entry = list
    while let current = entry {
      defer { entry = current.pointee.ifa_next }
      guard let name = current.pointee.ifa_name else { continue }
      let flags = current.pointee.ifa_flags
      states[String(cString: name)] =
        flags & UInt32(IFF_UP) == 0
        ? .administrativelyDown
        : flags & UInt32(IFF_RUNNING) == 0 ? .noCarrier : .up
    }
    return states
  }
}
