import Testing
@testable import NetProbe

/// The HTTP server's eviction choice: pure logic, no sockets.
@Suite struct AdmissionTests {
  let t0 = ContinuousClock.now
  let attacker = IPAddress.v4(0xC000_0201)
  let prometheus = IPAddress.v4(0xC000_0202)

  func candidate(_ id: Int, _ client: IPAddress, _ state: Admission.State, at seconds: Int) -> Admission.Candidate {
    Admission.Candidate(id: id, client: client, state: state, lastProgress: t0.advanced(by: .seconds(seconds)))
  }

  @Test func idleGoesBeforeIncompleteAndAnsweringNever() {
    let candidates = [
      candidate(1, attacker, .incompleteRequest, at: 0),
      candidate(2, attacker, .answering, at: -10),
      candidate(3, prometheus, .idle, at: 5),
    ]
    let counts = [attacker: 2, prometheus: 1]
    #expect(Admission.victim(among: candidates, connectionsPerClient: counts)?.id == 3)
    #expect(Admission.victim(among: candidates.filter { $0.id != 3 }, connectionsPerClient: counts)?.id == 1)
    #expect(Admission.victim(among: [candidates[1]], connectionsPerClient: counts) == nil)
  }

  @Test func theClientHoldingTheMostPaysFirstThenTheLongestSilent() {
    let candidates = [
      candidate(1, prometheus, .idle, at: 0),  // silent longest, but its only connection
      candidate(2, attacker, .idle, at: 3),
      candidate(3, attacker, .idle, at: 2),
    ]
    let counts = [attacker: 300, prometheus: 1]
    #expect(Admission.victim(among: candidates, connectionsPerClient: counts)?.id == 3)
    #expect(Admission.victim(among: candidates, connectionsPerClient: [attacker: 1, prometheus: 1])?.id == 1)
  }

  @Test func aClientAtItsLimitOnlyDisplacesItself() {
    let candidates = [candidate(1, prometheus, .idle, at: 0), candidate(2, attacker, .incompleteRequest, at: 5)]
    let counts = [attacker: 32, prometheus: 1]
    #expect(Admission.victim(among: candidates, connectionsPerClient: counts, onlyClient: attacker)?.id == 2)
    #expect(Admission.victim(among: candidates, connectionsPerClient: counts, onlyClient: IPAddress.v4(1)) == nil)
  }

  @Test func mappedAddressesCountAsTheirIPv4Client() throws {
    let mapped = try #require(IPAddress("::ffff:192.0.2.1"))
    #expect(Admission.clientKey(mapped) == .v4(0xC000_0201))
    let zoned = try #require(IPAddress("fe80::1%eth0"))
    #expect(Admission.clientKey(zoned) == IPAddress("fe80::1"))
    #expect(Admission.clientKey(.v4(7)) == .v4(7))
  }

  @Test func pressureAtThreeQuartersOrWithoutDescriptors() {
    #expect(!Admission.underPressure(open: 383, limit: 512, descriptorsExhausted: false))
    #expect(Admission.underPressure(open: 384, limit: 512, descriptorsExhausted: false))
    #expect(Admission.underPressure(open: 0, limit: 512, descriptorsExhausted: true))
  }

  @Test func rankingFollowsTheSameOrderAsTheSingleChoice() {
    let candidates = [
      candidate(1, prometheus, .idle, at: 0),
      candidate(2, attacker, .incompleteRequest, at: 1),
      candidate(3, attacker, .idle, at: 2),
      candidate(4, attacker, .answering, at: -5),
      candidate(5, attacker, .idle, at: 1),
    ]
    let counts = [attacker: 4, prometheus: 1]
    #expect(Admission.ranked(candidates, connectionsPerClient: counts).map(\.id) == [5, 3, 1, 2])
    #expect(Admission.victim(among: candidates, connectionsPerClient: counts)?.id == 5)
  }
}
