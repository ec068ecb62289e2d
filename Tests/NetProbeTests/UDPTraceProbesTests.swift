@preconcurrency import Glibc
import Testing
@testable import NetProbe

/// UDP trace probes: their ports (the flow), their payload, what an error-queue entry says,
/// and the matching of answers to probes, with forged, garbled and ambiguous answers.
@Suite struct UDPTraceProbesTests {
  let nonce: UInt64 = 0x0123_4567_89AB_CDEF
  let target = IPAddress("198.19.0.1")!
  let slot = 5 | ProbePayload.traceSlotFlag
  let sourcePort: UInt16 = 40_000

  func probe(sequence: UInt32 = 0x1_0007, ttl: Int = 3, port: UInt16 = 33_500) -> TraceProbe {
    TraceProbe(
      slot: slot, round: 9, ttl: ttl, index: 0, sequence: sequence, sendTime: 1_700_000_000_000_000_123,
      address: target, payloadSize: 56, sourcePort: sourcePort, destinationPort: port)
  }

  func table(_ probes: TraceProbe...) -> UDPTraceProbeTable {
    var table = UDPTraceProbeTable(nonce: nonce)
    for probe in probes { table.insert(probe) }
    return table
  }

  /// The first `quote` bytes of the UDP payload `probe` carried (with another nonce if given).
  func quoted(_ probe: TraceProbe, quote: Int = 56, nonce: UInt64? = nil) -> ArraySlice<UInt8> {
    let payload = ProbePayload(nonce: nonce ?? self.nonce, slot: probe.slot, sequence: probe.sequence, sendTimeNanoseconds: probe.sendTime)
    return UDPTraceFlow.payload(payload, size: 56).prefix(quote)
  }

  func destination(_ probe: TraceProbe) -> SocketAddress { SocketAddress(probe.address, port: probe.destinationPort) }

  func problem(_ result: Result<TraceProbe, TraceAnswerProblemError>) -> TraceAnswerProblem? {
    if case .failure(let failure) = result { return failure.problem }
    return nil
  }

  // MARK: Building

  func port(flow: UInt16 = 0xFFF0, vary: Bool, round: UInt64, ttl: Int, index: Int, probesPerHop: Int = 10) -> UInt16 {
    UDPTraceFlow.destinationPort(flow: flow, varyFlow: vary, round: round, ttl: ttl, index: index, probesPerHop: probesPerHop)
  }

  @Test func aFixedFlowKeepsOnePortAndAVariedFlowGivesEachProbeItsOwn() {
    var fixed = Set<UInt16>()
    for round: UInt64 in [1, 2, 1000, .max] {
      var varied = Set<UInt16>()
      for ttl in 1...64 {
        for index in 0..<10 {
          fixed.insert(port(vary: false, round: round, ttl: ttl, index: index))
          varied.insert(port(vary: true, round: round, ttl: ttl, index: index))
        }
      }
      #expect(varied.count == 640, "every probe of a 64-hop, 10-probe round on its own port")
      for port in varied { #expect((33_434..<34_458).contains(port), "\(port) outside traceroute's range") }
    }
    #expect(fixed.count == 1, "one 5-tuple, round after round")
    #expect(port(flow: 7, vary: false, round: 1, ttl: 1, index: 0) != port(flow: 8, vary: false, round: 1, ttl: 1, index: 0))
  }

  @Test func theNextRoundProbesOtherFlows() {
    // 3 probes at TTL 2: the next round's are on other ports.
    let first = Set((0..<3).map { port(vary: true, round: 1, ttl: 2, index: $0, probesPerHop: 3) })
    let second = Set((0..<3).map { port(vary: true, round: 2, ttl: 2, index: $0, probesPerHop: 3) })
    #expect(first.count == 3 && second.count == 3)
    #expect(first.isDisjoint(with: second))
    #expect(port(vary: true, round: 5, ttl: 2, index: 1) == port(vary: true, round: 5, ttl: 2, index: 1), "deterministic")
  }

  @Test func thePayloadCarriesTheProbeAndThePattern() {
    let header = ProbePayload(nonce: nonce, slot: slot, sequence: 77, sendTimeNanoseconds: 123)
    let bytes = UDPTraceFlow.payload(header, size: 56)
    #expect(bytes.count == 56)
    #expect(ProbePayload.decode(bytes) == header)
    #expect(ProbePayload.hasIntactPadding(bytes[...]))
    #expect(UDPTraceFlow.payload(header, size: 3).count == ProbePayload.headerSize, "never shorter than the header")
  }

  // MARK: Reading an error-queue entry

  func extended(origin: UInt8, type: UInt8, code: UInt8, info: UInt32 = 0) -> ExtendedError {
    ExtendedError(origin: origin, type: type, code: code, info: info, offender: target)
  }

  @Test func answersAreClassifiedPerFamily() {
    #expect(UDPTraceAnswer.classify(extended(origin: 2, type: 11, code: 0), family: .ip4) == .error(.timeExceeded))
    #expect(UDPTraceAnswer.classify(extended(origin: 2, type: 11, code: 1), family: .ip4) == nil, "reassembly timeout: no hop")
    #expect(UDPTraceAnswer.classify(extended(origin: 2, type: 3, code: 3), family: .ip4) == .portUnreachable)
    #expect(UDPTraceAnswer.classify(extended(origin: 2, type: 3, code: 1), family: .ip4) == .error(.unreachable(code: 1)))
    #expect(UDPTraceAnswer.classify(extended(origin: 2, type: 3, code: 4, info: 1400), family: .ip4) == .error(.mtuExceeded(mtu: 1400)))
    #expect(UDPTraceAnswer.classify(extended(origin: 3, type: 3, code: 0), family: .ip6) == .error(.timeExceeded))
    #expect(UDPTraceAnswer.classify(extended(origin: 3, type: 1, code: 4), family: .ip6) == .portUnreachable)
    #expect(UDPTraceAnswer.classify(extended(origin: 3, type: 1, code: 3), family: .ip6) == .error(.unreachable(code: 3)))
    #expect(UDPTraceAnswer.classify(extended(origin: 3, type: 2, code: 0, info: 1280), family: .ip6) == .error(.mtuExceeded(mtu: 1280)))
    #expect(UDPTraceAnswer.classify(extended(origin: 1, type: 0, code: 0), family: .ip4) == nil, "a local error")
    #expect(UDPTraceAnswer.classify(extended(origin: 2, type: 11, code: 0), family: .ip6) == nil, "an ICMPv4 origin on IPv6")
    #expect(UDPTraceAnswer.classify(extended(origin: 3, type: 3, code: 3), family: .ip4) == nil, "ICMPv6 numbers on IPv4")
  }

  // MARK: Matching

  @Test func anAnswerMatchesItsProbeOnce() {
    let sent = probe()
    var probes = table(sent)
    #expect(probes.takeAnswer(quoting: quoted(sent), destination: destination(sent), sourcePort: sourcePort) == .success(sent))
    #expect(problem(probes.takeAnswer(quoting: quoted(sent), destination: destination(sent), sourcePort: sourcePort)) == .unknownProbe)
  }

  @Test func theQuoteTellsApartTheProbesOfOneFlow() {
    let first = probe(sequence: 1, ttl: 1)
    let second = probe(sequence: 2, ttl: 2)
    let third = probe(sequence: 3, ttl: 3)
    var probes = table(first, second, third)
    #expect(probes.takeAnswer(quoting: quoted(second), destination: destination(second), sourcePort: sourcePort) == .success(second))
    // A quote cut short past the sequence still names the probe.
    #expect(
      probes.takeAnswer(quoting: quoted(third, quote: 16), destination: destination(third), sourcePort: sourcePort) == .success(third))
    #expect(probes.count == 1)
  }

  @Test func anEightByteQuoteNamesAProbeOnlyWhenItsFlowHasOneInFlight() {
    let a = probe(sequence: 1, ttl: 1)
    let b = probe(sequence: 2, ttl: 2)
    var shared = table(a, b)
    #expect(problem(shared.takeAnswer(quoting: [], destination: destination(a), sourcePort: sourcePort)) == .ambiguous)
    #expect(shared.count == 2, "nothing taken")
    // Under vary_flow each probe has a port of its own: the ports alone name it.
    let c = probe(sequence: 3, ttl: 1, port: 33_600)
    let d = probe(sequence: 4, ttl: 2, port: 33_601)
    var varied = table(c, d)
    #expect(varied.takeAnswer(quoting: [], destination: destination(d), sourcePort: sourcePort) == .success(d))
    #expect(varied.takeAnswer(quoting: [], destination: destination(c), sourcePort: sourcePort) == .success(c))
  }

  @Test func forgedAndGarbledAnswersAreCountedNotTaken() {
    let sent = probe()
    var probes = table(sent)
    let place = destination(sent)
    #expect(problem(probes.takeAnswer(quoting: quoted(sent, nonce: 42), destination: place, sourcePort: sourcePort)) == .badNonce)
    var garbled = Array(quoted(sent))
    garbled[40] ^= 0xFF
    #expect(problem(probes.takeAnswer(quoting: garbled[...], destination: place, sourcePort: sourcePort)) == .corrupt, "the padding")
    garbled = Array(quoted(sent))
    garbled[20] ^= 0x01
    #expect(problem(probes.takeAnswer(quoting: garbled[...], destination: place, sourcePort: sourcePort)) == .corrupt, "the send time")
    // A short quote that is not the start of any probe's payload on the flow.
    #expect(problem(probes.takeAnswer(quoting: [0xDE, 0xAD], destination: place, sourcePort: sourcePort)) == .corrupt)
    // Right payload, another flow: another port, host or socket.
    #expect(
      problem(probes.takeAnswer(quoting: quoted(sent), destination: SocketAddress(target, port: 33_501), sourcePort: sourcePort))
        == .unknownProbe)
    #expect(
      problem(
        probes.takeAnswer(
          quoting: quoted(sent), destination: SocketAddress(IPAddress("198.19.0.2")!, port: 33_500), sourcePort: sourcePort))
        == .unknownProbe)
    #expect(problem(probes.takeAnswer(quoting: quoted(sent), destination: place, sourcePort: sourcePort + 1)) == .unknownProbe)
    #expect(problem(probes.takeAnswer(quoting: [], destination: SocketAddress(target, port: 1), sourcePort: sourcePort)) == .unknownProbe)
    #expect(problem(probes.takeAnswer(quoting: quoted(sent), destination: nil, sourcePort: sourcePort)) == .malformed)
    #expect(probes.count == 1, "the probe is still waiting for its real answer")
    #expect(probes.takeAnswer(quoting: quoted(sent), destination: place, sourcePort: sourcePort) == .success(sent))
  }

  @Test func aFinishedRoundsProbesAreForgotten() {
    let mine = probe(sequence: 1)
    var other = probe(sequence: 2)
    other.slot = 6 | ProbePayload.traceSlotFlag
    var probes = table(mine, other)
    probes.removeAll(slot: slot)
    #expect(probes.count == 1)
    #expect(problem(probes.takeAnswer(quoting: quoted(mine), destination: destination(mine), sourcePort: sourcePort)) == .unknownProbe)
    // The flow's index forgot it too: an empty quote now names the one probe left there.
    #expect(probes.takeAnswer(quoting: [], destination: destination(other), sourcePort: sourcePort) == .success(other))
  }

  // MARK: The socket, on loopback

  /// A probe to a closed port on loopback: the Port Unreachable lands on the error queue
  /// with the quoted payload, destination and port, and the offender; the pending error it
  /// set is what the next send returns.
  @Test(arguments: ["127.0.0.1", "::1"])
  func aClosedPortAnswersOnTheErrorQueue(_ text: String) throws {
    let loopback = IPAddress(text)!
    guard let socket = try? UDPProbeSocket(family: loopback.family, options: ICMPSocketOptions()),
      let closedPort = try? Self.closedPort(loopback)
    else {
      #expect(loopback.family == .ip6, "IPv4 loopback must work")
      return  // no IPv6 (or no ::1) here
    }
    #expect(socket.sourcePort != 0)
    let header = ProbePayload(nonce: nonce, slot: slot, sequence: 9, sendTimeNanoseconds: 1)
    let sent = UDPTraceFlow.payload(header, size: 40)
    #expect(try socket.send(sent, to: SocketAddress(loopback, port: closedPort)))
    var buffer = [UInt8](repeating: 0, count: 2048)
    var control = [UInt8](repeating: 0, count: 512)
    var entries = [pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)]
    _ = try Poller.poll(&entries, timeoutMilliseconds: 2_000)
    #expect(entries[0].revents & Int16(POLLERR) != 0)
    let entry = try socket.receiveError(into: &buffer, control: &control)
    #expect(entry != nil, "the Port Unreachable is on the error queue")
    if let entry {
      #expect(Array(entry.quotedPayload) == sent)
      #expect(entry.destination == SocketAddress(loopback, port: closedPort))
      #expect(entry.error.offender == loopback)
      #expect(UDPTraceAnswer.classify(entry.error, family: loopback.family) == .portUnreachable)
    }
    #expect(try socket.receiveError(into: &buffer, control: &control) == nil)
    #expect(socket.takePendingError() == nil, "reading the queue cleared the pending error the next send would return")
  }

  /// A UDP port of `address` nobody listens on (bound once, then closed).
  static func closedPort(_ address: IPAddress) throws(SystemError) -> UInt16 {
    let holder = try Socket(family: address.family == .ip4 ? AF_INET : AF_INET6, type: Int32(SOCK_DGRAM.rawValue))
    try holder.bind(to: SocketAddress(address, port: 0))
    let port = try holder.localAddress().port
    holder.close()
    return port
  }
}

/// The path engine tracing loopback with UDP probes, end to end without privilege: the
/// destination's Port Unreachable comes off the error queue and ends the path at hop 1.
@Suite struct UDPTraceLoopbackTests {
  struct Literal: TargetAddresses {
    func address(ofTarget name: String) -> IPAddress? { IPAddress(name) }
  }

  func lines(_ engine: PathEngine) -> [String] {
    var exposition = Exposition()
    engine.collect(into: &exposition)
    return String(decoding: exposition.render(), as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
  }

  @Test(arguments: ["127.0.0.1", "::1"])
  func loopbackAnswersPortUnreachableAtHopOne(_ host: String) async throws {
    guard (try? UDPProbeSocket(family: IPAddress(host)!.family, options: ICMPSocketOptions())) != nil else {
      #expect(host == "::1", "IPv4 loopback must work")
      return
    }
    let config = try loadConfig(
      "targets:\n  - name: \"\(host)\"\n    host: \"\(host)\"\n    trace: {protocol: udp, vary_flow: true, interval: 1s, max_hops: 4}\n"
    ).get()
    let engine = try PathEngine(logger: quietLogger, identity: ProbeIdentity(), addresses: Literal(), socketErrors: ProbeSocketErrors())
    defer { engine.stop() }
    engine.apply(config)
    var rendered: [String] = []
    for _ in 0..<60 {
      rendered = lines(engine)
      if rendered.contains(where: { $0.hasPrefix("netprobe_path_destination_reached{") }) { break }
      try await Task.sleep(for: .milliseconds(50))
    }
    #expect(rendered.contains { $0.hasPrefix("netprobe_path_destination_reached{") && $0.hasSuffix(" 1") }, "\(rendered)")
    #expect(rendered.contains { $0.hasPrefix("netprobe_path_hops{") && $0.hasSuffix(" 1") })
    #expect(rendered.contains { $0.contains(#"hop="1",responder="\#(host)""#) })
    let unexpected = rendered.filter { $0.hasPrefix("netprobe_path_packets_unexpected_total{") }
    #expect(unexpected.count == 2 * TraceAnswerProblem.allCases.count)
    #expect(unexpected.allSatisfy { $0.hasSuffix(" 0") }, "\(unexpected)")
    #expect(!rendered.contains { $0.hasPrefix("netprobe_path_send_errors_total{") })
  }

  @Test func anICMPOnlyConfigurationRendersNoUDPCounters() throws {
    let config = try loadConfig("targets:\n  - host: \"127.0.0.1\"\n    trace: {interval: 1h}\n").get()
    let engine = try PathEngine(logger: quietLogger, identity: ProbeIdentity(), addresses: Literal(), socketErrors: ProbeSocketErrors())
    defer { engine.stop() }
    engine.apply(config)
    #expect(!lines(engine).contains { $0.contains("netprobe_path_packets_unexpected_total") })
  }
}
