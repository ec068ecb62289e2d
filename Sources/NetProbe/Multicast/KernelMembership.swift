/// The kernel's own view of multicast membership, from /proc/net/igmp and /proc/net/igmp6:
/// a join counts as a membership only when the kernel lists its group on its interface.
/// Pure parsers; reading the files is `ProcNet`'s job.
///
/// The group's entry is the truth for source-specific joins too. The kernel keeps a
/// group's entry on the interface (`ip_mc_list`, `ifmcaddr6`) for as long as a socket
/// holds a filter on it, INCLUDE with sources or EXCLUDE; it drops it when the last
/// socket leaves or the device goes, and keeps it across a link down/up. Sources are not
/// read, because no kernel table lists them reliably: /proc/net/mcfilter and mcfilter6
/// start each interface at the head of its group list (`igmp_mcf_get_first`,
/// `igmp6_mcf_get_first` / `mld_mcf_get_first` look only at the group joined most
/// recently) and skip the interface when that group has no sources, so any any-source
/// join after a source-specific one on the same interface (another group of ours,
/// another program, an address added, 224.0.0.1 re-added by a link up) hides every
/// source of it. Nor is `getsockopt(MCAST_MSFILTER)` a witness: it returns the filter the
/// socket itself set, which only we change, and still returns it after the device (and
/// the kernel's membership with it) is gone.
public struct KernelMembership: Sendable, Equatable {
  public struct Key: Sendable, Hashable {
    public var interface: String
    public var group: IPAddress
  }

  /// Groups joined per interface.
  public var groups: Set<Key> = []

  public init() {}

  /// True when the kernel lists `group` on `interface`: for an any-source join and for a
  /// source-specific one alike (see the type's comment).
  public func isMember(_ group: IPAddress, interface: String) -> Bool {
    groups.contains(Key(interface: interface, group: group))
  }

  /// True when the table lists any group of `family` on `interface`. An interface with
  /// multicast always holds the all-hosts group (224.0.0.1, ff02::1), so when it is listed
  /// the table can be trusted about our group; when it is not (no such file, IPv6 off),
  /// a missing group proves nothing. One lookup, not a scan of `groups`: it runs for every
  /// joined group each second.
  public func lists(interface: String, family: IPAddress.Family) -> Bool {
    listed.contains(Listed(interface: interface, family: family))
  }

  struct Listed: Sendable, Hashable {
    var interface: String
    var family: IPAddress.Family
  }

  /// The interfaces with a group in the tables, per family, filled as `groups` is.
  private var listed: Set<Listed> = []

  /// /proc/net/igmp: a device line (`Idx Device : Count Querier`) then one line per group,
  /// the address printed with `%08X` from its network-order bytes read as a host integer —
  /// on a little-endian host `010000E0` is 224.0.0.1. The kernel prints the name with
  /// `%-10s:`, so a name of 10 characters or more runs into the colon (`veth-agent:`);
  /// names never contain one.
  public mutating func parseIGMP(_ text: String, littleEndian: Bool = true) {
    var device: String?
    for line in text.split(separator: "\n").dropFirst() {
      if let first = line.first, first != "\t" && first != " " {
        let fields = line.split(separator: "\t", maxSplits: 1)
        let name = fields.count == 2 ? fields[1].prefix { $0 != ":" }.trimmingSpaces : ""
        device = name.isEmpty ? nil : name
        continue
      }
      guard let device, let hex = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).first,
        hex.count == 8, let raw = UInt32(hex, radix: 16)
      else { continue }
      let value = littleEndian ? raw.byteSwapped : raw
      groups.insert(Key(interface: device, group: .v4(value)))
      listed.insert(Listed(interface: device, family: .ip4))
    }
  }

  /// /proc/net/igmp6: `Idx Device Address Users Flags Timer`, the address as 32 hex digits
  /// in network order, the name in full (`%-15s`).
  public mutating func parseIGMP6(_ text: String) {
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 3, let group = Self.hex128(fields[2]) else { continue }
      groups.insert(Key(interface: String(fields[1]), group: group))
      listed.insert(Listed(interface: String(fields[1]), family: .ip6))
    }
  }

  static func hex128(_ text: Substring) -> IPAddress? {
    guard text.count == 32, text.allSatisfy(\.isHexDigit) else { return nil }
    var bytes: [UInt8] = []
    var index = text.startIndex
    for _ in 0..<16 {
      let next = text.index(index, offsetBy: 2)
      guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
      bytes.append(byte)
      index = next
    }
    return .v6(IPv6Bytes(bytes), zone: nil)
  }
}

extension Substring {
  /// Without leading and trailing spaces.
  fileprivate var trimmingSpaces: String {
    var text = self
    while text.first == " " { text.removeFirst() }
    while text.last == " " { text.removeLast() }
    return String(text)
  }
}
