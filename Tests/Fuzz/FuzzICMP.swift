import NetProbe

/// The nonce the seeds carry, so that mutated replies reach the matcher's deepest checks.
private let fuzzNonce: UInt64 = 0x0123_4567_89AB_CDEF

/// An echo request or reply carrying our payload, as `PingLoop` builds it.
private func echo(
  type: UInt8, family: IPAddress.Family, identifier: UInt16 = 0x1234, sequence: UInt32 = 7,
  slot: UInt32 = 3, payloadSize: Int = 40
) -> [UInt8] {
  var payload = ProbePayload.padding(count: payloadSize)
  ProbePayload(nonce: fuzzNonce, slot: slot, sequence: sequence, sendTimeNanoseconds: 1_700_000_000_000_000_000)
    .write(into: &payload)
  return ICMPEcho(type: type, identifier: identifier, sequence: UInt16(truncatingIfNeeded: sequence), payload: payload)
    .encoded(family: family)
}

/// A 20-byte IPv4 header from 198.18.0.1 to 198.19.0.1 (protocol ICMP).
private func ipv4Header(totalLength: Int) -> [UInt8] {
  [
    0x45, 0x00, UInt8(totalLength >> 8), UInt8(totalLength & 0xFF), 0, 0, 0x40, 0, 1, 1, 0, 0,
    198, 18, 0, 1, 198, 19, 0, 1,
  ]
}

/// A 40-byte IPv6 header (next header 58) to 2001:db8::2.
private let ipv6Header: [UInt8] =
  [0x60, 0, 0, 0, 0, 48, 58, 1]
  + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
  + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [2]

/// An ICMP error quoting one of our echo requests (IPv4: header + the whole request).
private func error(type: UInt8, code: UInt8, family: IPAddress.Family, word: [UInt8] = [0, 0, 0, 0]) -> [UInt8] {
  let request = echo(type: family == .ip4 ? ICMPType.echoRequestV4 : ICMPType.echoRequestV6, family: family)
  let quote = family == .ip4 ? ipv4Header(totalLength: 20 + request.count) + request : ipv6Header + request
  return [type, code, 0, 0] + word + quote
}

private let replySeeds: [(family: IPAddress.Family, kind: ICMPSocketKind, bytes: [UInt8])] = [
  (.ip4, .raw, echo(type: ICMPType.echoReplyV4, family: .ip4)),
  (.ip4, .dgram, echo(type: ICMPType.echoReplyV4, family: .ip4, identifier: 0x9999)),
  (.ip6, .raw, echo(type: ICMPType.echoReplyV6, family: .ip6)),
  (.ip6, .dgram, echo(type: ICMPType.echoReplyV6, family: .ip6, slot: ProbePayload.traceSlotFlag | 5)),
]

private let errorSeeds: [(family: IPAddress.Family, bytes: [UInt8])] = [
  (.ip4, error(type: ICMPType.timeExceededV4, code: 0, family: .ip4)),
  (.ip4, error(type: ICMPType.destinationUnreachableV4, code: 1, family: .ip4)),
  (.ip4, error(type: ICMPType.destinationUnreachableV4, code: 4, family: .ip4, word: [0, 0, 0x05, 0xDC])),
  (.ip6, error(type: ICMPType.timeExceededV6, code: 0, family: .ip6)),
  (.ip6, error(type: ICMPType.packetTooBigV6, code: 0, family: .ip6, word: [0, 0, 0x05, 0x00])),
  (.ip6, error(type: ICMPType.destinationUnreachableV6, code: 3, family: .ip6)),
]

/// `struct sock_extended_err` (origin ICMP, type 11) and the offender's sockaddr_in, as an
/// error queue delivers them on a little-endian host.
private let extendedErrorSeeds: [[UInt8]] = [
  [113, 0, 0, 0, 2, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] + [2, 0, 0, 0, 198, 18, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
  [90, 0, 0, 0, 3, 2, 0, 0, 0xDC, 0x05, 0, 0, 0, 0, 0, 0] + [10, 0, 0, 0, 0, 0, 0, 0]
    + [0xFE, 0x80] + [UInt8](repeating: 0, count: 13) + [1] + [0, 0, 0, 0],
]

/// Feeds random and mutated echo replies to `ReplyMatcher`, ICMP errors to
/// `ICMPError.decode`, raw IPv4 datagrams to `IPv4Header.decode`, and error-queue records
/// to `ExtendedError.decode`. Checks that nothing without our nonce is ever a candidate.
/// Returns the inputs run; a crash or a failed check is the failure.
func fuzzICMP(iterations: Int, seed: UInt64) -> Int {
  var mutator = Mutator(seed: seed, tokens: [[0x00], [0x08], [0x0B], [0x81], [0x45], [0x60], [0xFF, 0xFF], [0x80, 0, 0, 0]])
  var candidates = 0
  var errors = 0
  for index in 0..<iterations {
    let reply = replySeeds[index % replySeeds.count]
    let input = index % 4 == 0 ? mutator.randomInput(maxLength: 160) : mutator.mutate(reply.bytes)
    for tracer in [false, true] {
      let matcher = ReplyMatcher(family: reply.family, kind: reply.kind, nonce: fuzzNonce, forTracer: tracer)
      if case .candidate(let payload, let sequence, let length) = matcher.match(input[...], identifiers: (0x1234, 0x4321)) {
        precondition(payload.nonce == fuzzNonce, "a candidate without our nonce")
        precondition(UInt16(truncatingIfNeeded: payload.sequence) == sequence, "a candidate whose sequences disagree")
        precondition(length >= ProbePayload.headerSize && length <= input.count, "payload length \(length)")
        candidates += 1
      }
    }
    let quoted = errorSeeds[index % errorSeeds.count]
    let errorInput = index % 4 == 1 ? mutator.randomInput(maxLength: 160) : mutator.mutate(quoted.bytes)
    if let decoded = ICMPError.decode(errorInput[...], family: quoted.family) {
      precondition(decoded.quotedDestination.family == quoted.family, "a quote of another family")
      if case .mtuExceeded(let mtu?) = decoded.kind { precondition(mtu > 0, "an MTU of 0 must be unknown (nil)") }
      errors += 1
    }
    if let header = IPv4Header.decode(input[...]) {
      precondition(header.headerLength >= 20 && header.headerLength <= input.count, "header length \(header.headerLength)")
    }
    _ = ExtendedError.decode(index % 2 == 0 ? mutator.mutate(extendedErrorSeeds[index % 2]) : mutator.randomInput(maxLength: 48))
  }
  print("icmp: \(iterations) inputs, \(candidates) reply candidates, \(errors) errors decoded, no crash (seed \(seed))")
  return iterations
}
