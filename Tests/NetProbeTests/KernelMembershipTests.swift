import Testing
@testable import NetProbe

/// Samples captured from this kernel with a source-specific IPv4 join and an IPv6 join.
@Suite struct KernelMembershipTests {
  let igmp = """
    Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
    1\tlo        :     2      V3
    \t\t\t\t030201E8     1 0:00000000\t\t0
    \t\t\t\t010000E0     1 0:00000000\t\t0
    4\teth0      :     1      V2
    \t\t\t\t0A0A00EF     1 0:00000000\t\t0

    """
  let mcfilter = """
    Idx Device        MCA        SRC    INC    EXC
      1     lo 0xe8010203 0xc6120009      1      0
      1     lo 0xe8010203 0xc612000a      0      1

    """
  let igmp6 = """
    1    lo              ff3e0000000000000000000000000001     1 00000004 0
    1    lo              ff020000000000000000000000000001     1 0000000C 0

    """
  let mcfilter6 = """
    Idx Device                Multicast Address                   Source Address    INC    EXC
      3   eth1 ff3e0000000000000000000000008000 20010db8000000000000000000000010      1      0

    """

  @Test func readsGroupsInTheirByteOrder() {
    var membership = KernelMembership()
    membership.parseIGMP(igmp)
    #expect(membership.isMember(IPAddress("232.1.2.3")!, interface: "lo", source: nil))
    #expect(membership.isMember(IPAddress("224.0.0.1")!, interface: "lo", source: nil))
    #expect(membership.isMember(IPAddress("239.0.10.10")!, interface: "eth0", source: nil))
    #expect(!membership.isMember(IPAddress("232.1.2.3")!, interface: "eth0", source: nil))
    var bigEndian = KernelMembership()
    bigEndian.parseIGMP(igmp, littleEndian: false)
    #expect(bigEndian.isMember(IPAddress("3.2.1.232")!, interface: "lo", source: nil))
  }

  @Test func tellsWhetherAnInterfaceIsListedAtAll() {
    var membership = KernelMembership()
    membership.parseIGMP(igmp)
    membership.parseIGMP6(igmp6)
    #expect(membership.lists(interface: "eth0", family: .ip4) && membership.lists(interface: "lo", family: .ip6))
    #expect(!membership.lists(interface: "eth0", family: .ip6) && !membership.lists(interface: "eth1", family: .ip4))
    #expect(!KernelMembership().lists(interface: "lo", family: .ip4))
  }

  @Test func sourceSpecificNeedsTheSourceIncluded() {
    var membership = KernelMembership()
    membership.parseIGMP(igmp)
    membership.parseMCFilter(mcfilter)
    let group = IPAddress("232.1.2.3")!
    #expect(membership.isMember(group, interface: "lo", source: IPAddress("198.18.0.9")))
    #expect(!membership.isMember(group, interface: "lo", source: IPAddress("198.18.0.10")), "an excluded source")
    #expect(!membership.isMember(group, interface: "lo", source: IPAddress("198.18.0.11")))
  }

  @Test func readsIPv6Tables() {
    var membership = KernelMembership()
    membership.parseIGMP6(igmp6)
    membership.parseMCFilter6(mcfilter6)
    #expect(membership.isMember(IPAddress("ff3e::1")!, interface: "lo", source: nil))
    #expect(membership.sources[.init(interface: "eth1", group: IPAddress("ff3e::8000")!)] == [IPAddress("2001:db8::10")!])
  }

  /// Captured from this kernel: the igmp name runs into its colon from 10 characters on
  /// (`%-10s:`), and mcfilter cuts names to 6 (`%6.6s`), mcfilter6 too.
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
    let mcfilter = """
      Idx Device        MCA        SRC    INC    EXC
        3 veth-a 0xe8010101 0xc6120902      1      0

      """
    let igmp6 = """
      3    veth-agent-long ff3e0000000000000000000000008000     1 00000004 0

      """
    let mcfilter6 = """
      Idx Device                Multicast Address                   Source Address    INC    EXC
        3 veth-a ff3e0000000000000000000000008000 20010db8000000000000000000000010      1      0

      """
    var membership = KernelMembership()
    let names = membership.parseIGMP(igmp)
    membership.parseMCFilter(mcfilter, names: names)
    let names6 = membership.parseIGMP6(igmp6)
    membership.parseMCFilter6(mcfilter6, names: names6)
    #expect(names == [2: "pp0", 3: "veth-agent-long", 11: "veth-agent"])
    #expect(membership.isMember(IPAddress("239.7.7.7")!, interface: "veth-agent", source: nil))
    #expect(membership.isMember(IPAddress("224.0.0.1")!, interface: "pp0", source: nil))
    #expect(membership.isMember(IPAddress("232.1.1.1")!, interface: "veth-agent-long", source: IPAddress("198.18.9.2")))
    #expect(membership.isMember(IPAddress("ff3e::8000")!, interface: "veth-agent-long", source: IPAddress("2001:db8::10")))
    #expect(!membership.isMember(IPAddress("232.1.1.1")!, interface: "veth-a", source: nil))
  }

  @Test func ignoresGarbage() {
    var membership = KernelMembership()
    membership.parseIGMP("header\n\t\tZZZZZZZZ 1\n1\tlo : 1 V3\n\t\t12\n")
    membership.parseMCFilter("header\n 1 lo 0xnothex 0x1 1 0\n")
    membership.parseIGMP6("1 lo ff0\n")
    #expect(membership == KernelMembership())
  }
}
