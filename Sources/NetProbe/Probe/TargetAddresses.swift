/// Where the probes of a configured target go now: its configured address, or what its DNS
/// name last resolved to. The ping engine resolves the names; the path tracer, beside it,
/// asks here at the start of each round.
public protocol TargetAddresses: Sendable {
  func address(ofTarget name: String) -> IPAddress?
}
