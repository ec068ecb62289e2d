/// Builds our ICMP echo requests, for the ping engine and the path tracer alike: the 8-byte
/// ICMP header, the probe payload that finds the probe again, the pattern padding that shows
/// a corrupted reply, and (for the tracer) the word that fixes the checksum to a flow.
///
/// The buffer is kept between probes: only the header and the payload's first bytes change
/// from one probe to the next of the same size.
struct EchoRequestBuilder {
  private(set) var packet: [UInt8] = []
  /// Whether the last packet carried a flow word over the padding.
  private var compensated = false

  /// The offset of the tracer's flow word: right after the probe payload's header.
  static let flowWordOffset = 8 + ProbePayload.headerSize

  /// Fills `packet` with one echo request.
  ///
  /// - Parameters:
  ///   - identifier: the ICMP identifier (datagram sockets put the kernel's there).
  ///   - payload: what the reply must carry back; its sequence's low 16 bits are the ICMP
  ///     sequence.
  ///   - payloadSize: the ICMP payload's size, at least `ProbePayload.headerSize`.
  ///   - flow: the checksum every probe of a flow should carry (Paris traceroute: routers
  ///     that balance by it send the flow one way), or nil.
  mutating func build(family: IPAddress.Family, identifier: UInt16, payload: ProbePayload, payloadSize: Int, flow: UInt16? = nil) {
    if packet.count != 8 + payloadSize || compensated {
      packet = [UInt8](repeating: 0, count: 8) + ProbePayload.padding(count: payloadSize)
    }
    let sequence = payload.sequence
    packet[0] = family == .ip4 ? ICMPType.echoRequestV4 : ICMPType.echoRequestV6
    packet[1] = 0
    packet[2] = 0
    packet[3] = 0
    packet[4] = UInt8(identifier >> 8)
    packet[5] = UInt8(identifier & 0xFF)
    packet[6] = UInt8(truncatingIfNeeded: sequence >> 8)
    packet[7] = UInt8(truncatingIfNeeded: sequence)
    payload.write(into: &packet, at: 8)
    compensated = flow != nil
    if let flow { FlowChecksum.compensate(&packet, at: Self.flowWordOffset, flow: flow) }
    // The kernel computes the ICMPv6 checksum (it covers a pseudo-header we do not build).
    if family == .ip4 {
      let checksum = InternetChecksum.compute(packet)
      packet[2] = UInt8(checksum >> 8)
      packet[3] = UInt8(checksum & 0xFF)
    }
  }
}

/// The Paris-traceroute trick for ICMP: choose two payload bytes so that the ICMP checksum
/// — which load balancers hash along with the addresses — stays the same for every probe
/// of a flow, whatever their sequence numbers and send times.
public enum FlowChecksum {
  /// Writes, at `offset` in `packet` (an echo request with its checksum field zero), the
  /// 16-bit word that makes the ones' complement sum of the message equal to `flow`; the
  /// checksum then comes out as `~flow` on every probe. `offset` must be even.
  public static func compensate(_ packet: inout [UInt8], at offset: Int, flow: UInt16) {
    precondition(offset % 2 == 0 && offset + 1 < packet.count, "the compensation word must be aligned and inside")
    packet[offset] = 0
    packet[offset + 1] = 0
    let sum = ~InternetChecksum.compute(packet)  // the ones' complement sum so far
    // Find c with sum +' c = flow (ones' complement addition): c = flow +' ~sum.
    var value = UInt32(flow) + UInt32(~sum)
    value = (value & 0xFFFF) + (value >> 16)
    let word = UInt16(truncatingIfNeeded: value)
    packet[offset] = UInt8(word >> 8)
    packet[offset + 1] = UInt8(word & 0xFF)
  }
}
