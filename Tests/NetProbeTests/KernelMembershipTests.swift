import Testing
@testable import NetProbe

/// Samples of /proc/net/igmp and igmp6 captured from this kernel.
@Suite struct KernelMembershipTests {
  let igmp = """
    Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
    1\tlo        :     2      V3
    \t\t\t\t030201E8     1 0:00000000\t\t0
    \t\t\t\t010000E0     1 0:00000000\t\t0
    4\teth0      :     1      V2
    \t\t\t\t0A0A00EF     1 0:00000000\t\t0

    """
  let igmp6 = """
    1    lo              ff3e0000000000000000000000000001     1 00000004 0
    1    lo              ff020000000000000000000000000001     1 0000000C 0

    """

  @Test func readsGroupsInTheirByteOrder() {
    var membership = KernelMembership()
    membership.parseIGMP(igmp)
    #expect(membership.isMember(IPAddress("232.1.2.3")!, interface: "lo"))
    #expect(membership.isMember(IPAddress("224.0.0.1")!, interface: "lo"))
    #expect(membership.isMember(IPAddress("239.0.10.10")!, interface: "eth0"))
    #expect(!membership.isMember(IPAddress("232.1.2.3")!, interface: "eth0"))
    var bigEndian = KernelMembership()
    bigEndian.parseIGMP(igmp, littleEndian: false)
    #expect(bigEndian.isMember(IPAddress("3.2.1.232")!, interface: "lo"))
  }

  @Test func tellsWhetherAnInterfaceIsListedAtAll() {
    var membership = KernelMembership()
    membership.parseIGMP(igmp)
    membership.parseIGMP6(igmp6)
    #expect(membership.lists(interface: "eth0", family: .ip4) && membership.lists(interface: "lo", family: .ip6))
    #expect(!membership.lists(interface: "eth0", family: .ip6) && !membership.lists(interface: "eth1", family: .ip4))
    #expect(!KernelMembership().lists(interface: "lo", family: .ip4))
  }

  /// Captured from a 6.18 kernel in a namespace: a source-specific join (239.2.2.2
  /// from 198.19.0.1, ff35::2 from 2001:db8::1) and an any-source one (239.1.1.1,
  /// ff15::1) on e0, in both orders, then across `ip link set e0 down` and `up`. The group
  /// entry is there in every state. /proc/net/mcfilter (and mcfilter6) listed the sources
  /// only in the "any-source first" state: there the source-specific group had been joined
  /// most recently, heading e0's list. After "source-specific first" and after either link
  /// flap (224.0.0.1 and the solicited-node group are re-added at the head on link up) it
  /// listed nothing, though every join held.
  struct Mix {
    var name: String
    var igmp: String
    var igmp6: String
  }

  static let e0 = """
    Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
    1\tlo        :     1      V3
    \t\t\t\t010000E0     1 0:00000000\t\t0
    3\te0        :     3      V3

    """

  static let mixes: [Mix] = [
    Mix(
      name: "source-specific first",
      igmp: e0 + """
        \t\t\t\t010101EF     1 0:00000000\t\t0
        \t\t\t\t020202EF     1 0:00000000\t\t0
        \t\t\t\t010000E0     1 0:00000000\t\t0

        """,
      igmp6: """
        3    e0              ff150000000000000000000000000001     1 00000004 0
        3    e0              ff350000000000000000000000000002     1 00000004 0
        3    e0              ff0200000000000000000001ff66d91f     1 00000004 0
        3    e0              ff020000000000000000000000000001     1 0000000C 0
        3    e0              ff010000000000000000000000000001     1 00000008 0

        """),
    Mix(
      name: "any-source first",
      igmp: e0 + """
        \t\t\t\t020202EF     1 0:00000000\t\t0
        \t\t\t\t010101EF     1 0:00000000\t\t0
        \t\t\t\t010000E0     1 0:00000000\t\t0

        """,
      igmp6: """
        3    e0              ff350000000000000000000000000002     1 00000004 0
        3    e0              ff150000000000000000000000000001     1 00000004 0
        3    e0              ff0200000000000000000001ff66d91f     1 00000004 0
        3    e0              ff020000000000000000000000000001     1 0000000C 0
        3    e0              ff010000000000000000000000000001     1 00000008 0

        """),
    // While down the kernel drops 224.0.0.1 (and the solicited-node group) but keeps ours.
    Mix(
      name: "link down",
      igmp: e0.replacingOccurrences(of: ":     3", with: ":     2") + """
        \t\t\t\t010101EF     1 0:00000000\t\t0
        \t\t\t\t020202EF     1 0:00000000\t\t0

        """,
      igmp6: """
        3    e0              ff150000000000000000000000000001     1 00000000 0
        3    e0              ff350000000000000000000000000002     1 00000000 0
        3    e0              ff020000000000000000000000000001     1 00000008 0
        3    e0              ff010000000000000000000000000001     1 00000008 0

        """),
    Mix(
      name: "link up again",
      igmp: e0 + """
        \t\t\t\t010000E0     1 0:00000000\t\t0
        \t\t\t\t020202EF     1 0:00000000\t\t0
        \t\t\t\t010101EF     1 0:00000000\t\t0

        """,
      igmp6: """
        3    e0              ff0200000000000000000001ff66d91f     1 00000004 0
        3    e0              ff350000000000000000000000000002     1 00000004 0
        3    e0              ff150000000000000000000000000001     1 00000004 0
        3    e0              ff020000000000000000000000000001     1 0000000C 0
        3    e0              ff010000000000000000000000000001     1 00000008 0

        """),
  ]

  @Test(arguments: mixes.map(\.name)) func sourceSpecificBesideAnySourceInEveryOrder(_ name: String) throws {
    let mix = try #require(Self.mixes.first { $0.name == name })
    var membership = KernelMembership()
    membership.parseIGMP(mix.igmp)
    membership.parseIGMP6(mix.igmp6)
    for group in ["239.2.2.2", "239.1.1.1", "ff35::2", "ff15::1"] {
      #expect(membership.isMember(try #require(IPAddress(group)), interface: "e0"), "\(group), \(name)")
      #expect(!membership.isMember(try #require(IPAddress(group)), interface: "lo"), "\(group), \(name)")
    }
    #expect(membership.lists(interface: "e0", family: .ip4) && membership.lists(interface: "e0", family: .ip6))
  }

  /// What the kernel shows once the device that held the joins is gone and a new one took
  /// its name (and index): only the groups of the new device's own making. Our groups are
  /// missing, on a listed interface: the membership is truly lost.
  @Test func aRecreatedDeviceHasLostTheGroups() throws {
    var membership = KernelMembership()
    membership.parseIGMP(
      Self.e0.replacingOccurrences(of: ":     3", with: ":     1")
        + "\t\t\t\t010000E0     1 0:00000000\t\t0\n")
    membership.parseIGMP6("3    e0              ff020000000000000000000000000001     1 0000000C 0\n")
    for group in ["239.2.2.2", "239.1.1.1", "ff35::2", "ff15::1"] {
      #expect(!membership.isMember(try #require(IPAddress(group)), interface: "e0"), "\(group)")
    }
    #expect(membership.lists(interface: "e0", family: .ip4) && membership.lists(interface: "e0", family: .ip6))
  }

  /// Captured from this kernel: the igmp name runs into its colon from 10 characters on
  /// (`%-10s:`); igmp6 prints it in full (`%-15s`).
  @Test func readsLongInterfaceNames() {
    let igmp = """
      Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
      2\tpp0       :     1      V3
      \t\t\t\t010000E0     1 0:00000000\t\t0
      3\tveth-agent-long:     2      V3
      \t\t\t\t010101E8     1 0:00000000\t\t0
      \t\t\t\t010000E0     1 0:00000000\t\t0
      11\tveth-agent:     1      V3
      \t\t\t\t070707EF     1 0:00000000\t\t0

      """
    let igmp6 = """
      3    veth-agent-long ff3e0000000000000000000000008000     1 00000004 0

      """
    var membership = KernelMembership()
    membership.parseIGMP(igmp)
    membership.parseIGMP6(igmp6)
    #expect(membership.isMember(IPAddress("239.7.7.7")!, interface: "veth-agent"))
    #expect(membership.isMember(IPAddress("224.0.0.1")!, interface: "pp0"))
    #expect(membership.isMember(IPAddress("232.1.1.1")!, interface: "veth-agent-long"))
    #expect(membership.isMember(IPAddress("ff3e::8000")!, interface: "veth-agent-long"))
    #expect(!membership.isMember(IPAddress("232.1.1.1")!, interface: "veth-a"))
  }

  @Test func ignoresGarbage() {
    var membership = KernelMembership()
    membership.parseIGMP("header\n\t\tZZZZZZZZ 1\n1\tlo : 1 V3\n\t\t12\n")
    membership.parseIGMP6("1 lo ff0\n")
    #expect(membership == KernelMembership())
  }
}
