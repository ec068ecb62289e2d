import Logging
import Testing
@testable import NetProbe

/// The path tracer's ICMP identifiers are the ping engine's with the trace bit set.
@Suite struct TraceIdentifierTests {
  let nonce: UInt64 = 0x0123_4567_89AB_CDEF

  @Test func theEnginesIdentifiersNeverMeetAcrossRotations() {
    let identity = ProbeIdentity()
    for _ in 0..<2_000 {
      let ping = identity.pingIdentifiers
      let trace = identity.traceIdentifiers
      #expect(ping.0 & ProbePayload.traceIdentifierBit == 0 && ping.1 & ProbePayload.traceIdentifierBit == 0)
      #expect(trace.0 == ping.0 | ProbePayload.traceIdentifierBit && trace.1 == ping.1 | ProbePayload.traceIdentifierBit)
      identity.rotate()
    }
  }

  /// On raw sockets both engines see every echo reply: each ignores the other's, neither
  /// counts them as foreign.
  @Test func eachEngineIgnoresTheOthersReplies() {
    func reply(identifier: UInt16, slot: UInt32) -> [UInt8] {
      var payload = ProbePayload.padding(count: 56)
      ProbePayload(nonce: nonce, slot: slot, sequence: 7, sendTimeNanoseconds: 1).write(into: &payload)
      return ICMPEcho(type: 0, identifier: identifier, sequence: 7, payload: payload).encoded(family: .ip4)
    }
    let ping = ReplyMatcher(family: .ip4, kind: .raw, nonce: nonce)
    let tracer = ReplyMatcher(family: .ip4, kind: .raw, nonce: nonce, forTracer: true)
    let traced = reply(identifier: 0xC242, slot: 3 | ProbePayload.traceSlotFlag)
    let pinged = reply(identifier: 0x4242, slot: 3)
    #expect(ping.match(traced[...], identifiers: (0x4242, 0x4242)) == .ignored)
    #expect(tracer.match(pinged[...], identifiers: (0xC242, 0xC242)) == .ignored)
    guard case .candidate = ping.match(pinged[...], identifiers: (0x4242, 0x4242)) else {
      Issue.record("the ping engine's own reply")
      return
    }
    #expect(ping.match(reply(identifier: 0x4243, slot: 3)[...], identifiers: (0x4242, 0x4242)) == .unexpected(.foreign))
  }
}
