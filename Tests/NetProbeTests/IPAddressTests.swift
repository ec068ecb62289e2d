import Testing
@testable import NetProbe

@Suite struct IPAddressTests {
  @Test(arguments: [
    ("192.0.2.1", "192.0.2.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
    ("2001:DB8::1", "2001:db8::1"), ("::", "::"), ("::1", "::1"), ("1::", "1::"),
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
    ("::ffff:198.18.0.1", "::ffff:c612:1"), ("fe80::1%eth0", "fe80::1%eth0"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
    ("1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"),
  ])
  func parsesAndPrintsCanonically(input: String, canonical: String) throws {
    let address = try #require(IPAddress(input))
    #expect(address.description == canonical)
    #expect(IPAddress(canonical) == address)
  }

  @Test(arguments: [
    "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "1..2.3", " 1.2.3.4", "1.2.3.4 ",
    ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", "::1%", "fe80::1%a/b", "1.2.3.4%eth0x",
    "1:2:3:4:5:6:7::8:9", "::1.2.3", "example.com",
  ])
  func rejectsMalformed(input: String) {
    #expect(IPAddress(input) == nil)
  }

  @Test func classifies() throws {
    #expect(try #require(IPAddress("239.1.1.1")).isMulticast)
    #expect(try #require(IPAddress("ff02::16")).isMulticast)
    #expect(try !#require(IPAddress("198.18.0.1")).isMulticast)
    #expect(try #require(IPAddress("127.0.0.2")).isLoopback)
    #expect(try #require(IPAddress("::1")).isLoopback)
    #expect(try #require(IPAddress("::")).isUnspecified)
    #expect(try #require(IPAddress("::1")).family == .ip6)
    #expect(try #require(IPAddress("198.18.0.1")).bytes == [198, 18, 0, 1])
  }

  @Test func listenAddresses() {
    #expect(SocketAddress.parseListen(":9469")?.description == "[::]:9469")
    #expect(SocketAddress.parseListen("0.0.0.0:9469")?.description == "0.0.0.0:9469")
    #expect(SocketAddress.parseListen("localhost:1")?.description == "127.0.0.1:1")
    #expect(SocketAddress.parseListen("[::1]:9469")?.description == "[::1]:9469")
    #expect(SocketAddress.parseListen("127.0.0.1:0")?.port == 0)
    for bad in ["9469", "127.0.0.1", "127.0.0.1:70000", "::1:9469", "example.com:80", "[127.0.0.1]:80", "127.0.0.1:"] {
      #expect(SocketAddress.parseListen(bad) == nil, "\(bad)")
    }
  }
}
