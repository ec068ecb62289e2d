/// The kernel's own view of multicast membership, from /proc/net/igmp, /proc/net/mcfilter,
/// /proc/net/igmp6 and /proc/net/mcfilter6: a join counts as a membership only when the
/// kernel lists it. Pure parsers; reading the files is `ProcNet`'s job.
public struct KernelMembership: Sendable, Equatable {
  public struct Key: Sendable, Hashable {
    public var interface: String
    public var group: IPAddress
  }

  /// Groups joined per interface.
  public var groups: Set<Key> = []
  /// Source filters per interface and group (the SSM sources the kernel admits).
  public var sources: [Key: Set<IPAddress>] = [:]

  public init() {}

  public func isMember(_ group: IPAddress, interface: String, source: IPAddress?) -> Bool {
    let key = Key(interface: interface, group: group)
    guard groups.contains(key) else { return false }
    guard let source else { return true }
    return sources[key]?.contains(source) ?? false
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
  ///
  /// Returns the interface names by index, in full, for `parseMCFilter`.
  @discardableResult
  public mutating func parseIGMP(_ text: String, littleEndian: Bool = true) -> [Int: String] {
    var device: String?
    var names: [Int: String] = [:]
    for line in text.split(separator: "\n").dropFirst() {
      if let first = line.first, first != "\t" && first != " " {
        let fields = line.split(separator: "\t", maxSplits: 1)
        let name = fields.count == 2 ? fields[1].prefix { $0 != ":" }.trimmingSpaces : ""
        device = name.isEmpty ? nil : name
        if let device, let index = Int(fields[0]) { names[index] = device }
        continue
      }
      guard let device, let hex = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).first,
        hex.count == 8, let raw = UInt32(hex, radix: 16)
      else { continue }
      let value = littleEndian ? raw.byteSwapped : raw
      groups.insert(Key(interface: device, group: .v4(value)))
      listed.insert(Listed(interface: device, family: .ip4))
    }
    return names
  }

  /// /proc/net/mcfilter: `Idx Device MCA SRC INC EXC`, MCA and SRC as `0x%08x` of the
  /// address in host order (ntohl), so they read directly. The kernel cuts the name to 6
  /// characters (`%6.6s`): `names` (from `parseIGMP`) gives the full one by index.
  public mutating func parseMCFilter(_ text: String, names: [Int: String] = [:]) {
    for line in text.split(separator: "\n").dropFirst() {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 6, let group = Self.hex32(fields[2]), let source = Self.hex32(fields[3]),
        let include = Int(fields[4]), include > 0
      else { continue }
      let interface = Int(fields[0]).flatMap { names[$0] } ?? String(fields[1])
      sources[Key(interface: interface, group: .v4(group)), default: []].insert(.v4(source))
    }
  }

  /// /proc/net/igmp6: `Idx Device Address Users Flags Timer`, the address as 32 hex digits
  /// in network order, the name in full (`%-15s`). Returns the names by index for
  /// `parseMCFilter6`.
  @discardableResult
  public mutating func parseIGMP6(_ text: String) -> [Int: String] {
    var names: [Int: String] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 3, let group = Self.hex128(fields[2]) else { continue }
      groups.insert(Key(interface: String(fields[1]), group: group))
      listed.insert(Listed(interface: String(fields[1]), family: .ip6))
      if let index = Int(fields[0]) { names[index] = String(fields[1]) }
    }
    return names
  }

  /// /proc/net/mcfilter6: `Idx Device Multicast-Address Source-Address INC EXC`, the name
  /// cut to 6 characters as in mcfilter: `names` (from `parseIGMP6`) gives it in full.
  public mutating func parseMCFilter6(_ text: String, names: [Int: String] = [:]) {
    for line in text.split(separator: "\n").dropFirst() {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 6, let group = Self.hex128(fields[2]), let source = Self.hex128(fields[3]),
        let include = Int(fields[4]), include > 0
      else { continue }
      let interface = Int(fields[0]).flatMap { names[$0] } ?? String(fields[1])
      sources[Key(interface: interface, group: group), default: []].insert(source)
    }
  }

  static func hex32(_ text: Substring) -> UInt32? {
    guard text.hasPrefix("0x"), text.count == 10 else { return nil }
    return UInt32(text.dropFirst(2), radix: 16)
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
